"""`flask --app app livekit provision-sip` against the real livekit-server of the rig, run as the
operator runs it (a subprocess with the settings in its environment): a dry run changes
nothing, the first run creates the trunk and the callee rule, the second reports no change,
and a rotated password is an update of that one field."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from livekit import api as lk
from livekit.protocol import sip as sip_proto

from app.gateways.livekit_sip import is_ours
from tests.aio import run_async
from tests.live.app_env import app_config, new_trunk_password, remove_our_sip_objects

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).parent / "flask")


def provision(env: dict, *args: str) -> str:
    result = subprocess.run([FLASK, "--app", "app", "livekit", "provision-sip", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ours(rig) -> tuple[list[dict], list[dict]]:
    async def read():
        async with lk.LiveKitAPI(rig.livekit.http_url, rig.livekit.api_key, rig.livekit.api_secret) as api:
            trunks = (await api.sip.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest())).items
            rules = (await api.sip.list_dispatch_rule(sip_proto.ListSIPDispatchRuleRequest())).items
        return ([MessageToDict(t, preserving_proto_field_name=True) for t in trunks if is_ours(t.metadata)],
                [MessageToDict(r, preserving_proto_field_name=True) for r in rules if is_ours(r.metadata)])
    return run_async(read)


def test_provision_sip_dry_run_create_then_no_change(live_rig, app_host, tmp_path):
    run_async(lambda: remove_our_sip_objects(live_rig))
    password = new_trunk_password()
    settings = app_config(live_rig, app_host, tmp_path, password)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "TWILIO_", "DATABASE_URL"))}
    env.update({k: str(v) for k, v in settings.items()})
    try:
        dry = provision(env, "--dry-run")
        assert "would create inbound trunk\nwould create dispatch rule\nDry run: nothing was changed." in dry, dry
        assert ours(live_rig) == ([], [])

        first = provision(env)
        assert "create inbound trunk\ncreate dispatch rule\n" in first, first
        (trunk,), (rule,) = ours(live_rig)
        assert trunk["auth_username"] == "wt-live-twilio" and trunk["auth_password"] == password
        assert trunk["headers_to_attributes"] == {"X-WT-Call": "wt_call", "X-WT-Role": "wt_role", "X-WT-Transfer": "wt_transfer"}
        assert trunk["ringing_timeout"] == "600s"  # what the real server stored, not LiveKit SIP's 3-minute default
        assert rule["trunk_ids"] == [trunk["sip_trunk_id"]]
        assert "dispatch_rule_callee" in rule["rule"] and not rule["rule"]["dispatch_rule_callee"].get("room_prefix")
        assert f"Inbound trunk: {trunk['sip_trunk_id']}\nDispatch rule: {rule['sip_dispatch_rule_id']}" in first
        assert f"{app_host.url}/twilio/voice" in first and f"{app_host.url}/livekit/webhook" in first

        second = provision(env)
        assert second.startswith(f"no change to inbound trunk {trunk['sip_trunk_id']}\n"
                                 f"no change to dispatch rule {rule['sip_dispatch_rule_id']}\n"
                                 "LiveKit is already provisioned; no change."), second
        assert ours(live_rig) == ([trunk], [rule])
        assert "no change" in provision(env, "--dry-run")

        rotated = dict(env, LIVEKIT_SIP_PASSWORD=new_trunk_password())
        plan = provision(rotated, "--dry-run")
        assert f"would update inbound trunk {trunk['sip_trunk_id']}: auth_password\n" in plan, plan
        assert rotated["LIVEKIT_SIP_PASSWORD"] not in plan and ours(live_rig) == ([trunk], [rule])
        provision(rotated)
        (updated,), (same_rule,) = ours(live_rig)
        assert updated["auth_password"] == rotated["LIVEKIT_SIP_PASSWORD"] and same_rule == rule
        assert updated["sip_trunk_id"] == trunk["sip_trunk_id"] and updated["ringing_timeout"] == "600s"

        shorter = dict(rotated, LIVEKIT_SIP_RINGING_TIMEOUT_S="45")
        plan = provision(shorter, "--dry-run")
        assert f"would update inbound trunk {trunk['sip_trunk_id']}: ringing_timeout (600 s -> 45 s)\n" in plan, plan
        assert "shorter than AGENT_ANSWER_TIMEOUT_S" in plan  # 45 < 30 + 30: told, not refused
        provision(shorter)
        (updated,), _ = ours(live_rig)
        assert updated["ringing_timeout"] == "45s" and updated["auth_password"] == rotated["LIVEKIT_SIP_PASSWORD"]
    finally:
        run_async(lambda: remove_our_sip_objects(live_rig))
