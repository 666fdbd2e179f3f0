"""The provisioning plan: what `livekit provision-sip` creates, updates or leaves alone.

The SIP service here is an in-memory stand-in with livekit-api's method names and protobuf
types, so the planning logic is checked on every case; the real livekit-server is exercised by
tests/live/test_provision_sip.py."""
from __future__ import annotations

import itertools

import pytest
from livekit.protocol import sip as sip_proto

from app.errors import ConfigError, LiveKitFailed
from app.gateways.livekit_sip import HEADERS_TO_ATTRIBUTES, MARKER, SipProvisioner
from tests.aio import run_async

USER, PASSWORD = "twilio", "s3cret-password"


class FakeSipService:
    def __init__(self, trunks=(), rules=()):
        self.trunks = {t.sip_trunk_id: t for t in trunks}
        self.rules = {r.sip_dispatch_rule_id: r for r in rules}
        self.writes: list[str] = []
        self._ids = itertools.count(1)

    async def list_inbound_trunk(self, request):
        return sip_proto.ListSIPInboundTrunkResponse(items=list(self.trunks.values()))

    async def list_dispatch_rule(self, request):
        return sip_proto.ListSIPDispatchRuleResponse(items=list(self.rules.values()))

    async def create_inbound_trunk(self, request):
        self.writes.append("create_inbound_trunk")
        trunk = sip_proto.SIPInboundTrunkInfo()
        trunk.CopyFrom(request.trunk)
        trunk.sip_trunk_id = f"ST_{next(self._ids)}"
        self.trunks[trunk.sip_trunk_id] = trunk
        return trunk

    async def update_inbound_trunk(self, trunk_id, trunk):
        self.writes.append("update_inbound_trunk")
        self.trunks[trunk_id] = trunk
        return trunk

    async def create_dispatch_rule(self, request):
        self.writes.append("create_dispatch_rule")
        rule = sip_proto.SIPDispatchRuleInfo()
        rule.CopyFrom(request.dispatch_rule)
        rule.sip_dispatch_rule_id = f"SDR_{next(self._ids)}"
        self.rules[rule.sip_dispatch_rule_id] = rule
        return rule

    async def update_dispatch_rule(self, rule_id, rule):
        self.writes.append("update_dispatch_rule")
        self.rules[rule_id] = rule
        return rule


class FakeGateway:
    def __init__(self, service: FakeSipService):
        self.service = service

    def sip(self, what, fn):
        return run_async(lambda: fn(self.service))


def provision(service: FakeSipService, password: str = PASSWORD):
    provisioner = SipProvisioner(FakeGateway(service), username=USER, password=password)
    plan = provisioner.plan()
    return plan, provisioner.apply(plan)


def test_empty_server_gets_a_trunk_and_a_callee_rule_then_nothing_changes():
    service = FakeSipService()
    plan, done = provision(service)
    assert [plan.trunk.action, plan.rule.action] == ["create", "create"]
    trunk, rule = service.trunks[done.trunk_id], service.rules[done.rule_id]
    assert (trunk.auth_username, trunk.auth_password, trunk.metadata) == (USER, PASSWORD, MARKER)
    assert dict(trunk.headers_to_attributes) == {"X-WT-Call": "wt_call", "X-WT-Role": "wt_role", "X-WT-Transfer": "wt_transfer"}
    assert list(rule.trunk_ids) == [done.trunk_id]
    assert rule.rule.WhichOneof("rule") == "dispatch_rule_callee" and rule.rule.dispatch_rule_callee.room_prefix == ""
    assert trunk.ringing_timeout.ToSeconds() == 600  # not LiveKit SIP's 3-minute default

    again, same = provision(service)
    assert not again.changes_anything and same == done
    assert again.lines() == [f"no change to inbound trunk {done.trunk_id}", f"no change to dispatch rule {done.rule_id}"]
    assert service.writes == ["create_inbound_trunk", "create_dispatch_rule"]


def test_update_touches_only_what_differs_and_keeps_operator_settings():
    service = FakeSipService()
    _, done = provision(service)
    trunk = service.trunks[done.trunk_id]
    trunk.allowed_addresses.append("54.172.60.0/30")  # the operator restricted it to Twilio
    trunk.headers_to_attributes["X-Other"] = "other"
    trunk.numbers.append("+15005550006")
    service.writes.clear()

    plan, _ = provision(service, password="rotated-password")
    assert plan.trunk.action == "update" and plan.rule.action == "keep"
    assert plan.trunk.changes[0] == "auth_password" and plan.trunk.changes[1].startswith("numbers")
    assert "rotated" not in " ".join(plan.lines())  # the password is named, never shown
    stored = service.trunks[done.trunk_id]
    assert stored.auth_password == "rotated-password" and list(stored.numbers) == []
    assert list(stored.allowed_addresses) == ["54.172.60.0/30"] and stored.headers_to_attributes["X-Other"] == "other"
    assert service.writes == ["update_inbound_trunk"]


def test_a_rule_whose_trunk_was_deleted_is_pointed_at_the_new_trunk():
    service = FakeSipService()
    _, done = provision(service)
    del service.trunks[done.trunk_id]
    service.rules[done.rule_id].rule.dispatch_rule_callee.room_prefix = "call-"
    plan = SipProvisioner(FakeGateway(service), username=USER, password=PASSWORD).plan()
    assert plan.lines() == ["create inbound trunk", f"update dispatch rule {done.rule_id}: trunk_ids, rule (callee, empty room prefix, no PIN)"]
    _, redone = provision(service)
    assert redone.rule_id == done.rule_id and list(service.rules[done.rule_id].trunk_ids) == [redone.trunk_id]
    assert service.rules[done.rule_id].rule.dispatch_rule_callee.room_prefix == ""


def test_ambiguity_and_foreign_catch_alls_are_reported():
    ours = [sip_proto.SIPInboundTrunkInfo(sip_trunk_id=f"ST_{i}", metadata=MARKER) for i in (1, 2)]
    with pytest.raises(LiveKitFailed, match="ST_1, ST_2"):
        SipProvisioner(FakeGateway(FakeSipService(ours)), username=USER, password=PASSWORD).plan()

    foreign = sip_proto.SIPInboundTrunkInfo(sip_trunk_id="ST_9", name="legacy", metadata="{}")
    catch_all = sip_proto.SIPDispatchRuleInfo(sip_dispatch_rule_id="SDR_9", name="everything")
    plan = SipProvisioner(FakeGateway(FakeSipService([foreign], [catch_all])), username=USER, password=PASSWORD).plan()
    assert any("ST_9 (legacy)" in w for w in plan.warnings) and any("SDR_9 (everything)" in w for w in plan.warnings)


def test_a_trunk_without_credentials_is_refused():
    with pytest.raises(ConfigError, match="LIVEKIT_SIP_USERNAME"):
        SipProvisioner(FakeGateway(FakeSipService()), username="", password="")
    assert set(HEADERS_TO_ATTRIBUTES) == {"X-WT-Call", "X-WT-Role", "X-WT-Transfer"}


def test_the_ringing_timeout_is_set_compared_and_kept_on_every_run():
    service = FakeSipService()
    _, done = provision(service)
    # A trunk made before the app set it (or changed by hand): LiveKit SIP's default applies.
    service.trunks[done.trunk_id].ClearField("ringing_timeout")
    plan = SipProvisioner(FakeGateway(service), username=USER, password=PASSWORD).plan()
    assert plan.trunk.changes == ("ringing_timeout (unset (LiveKit's 3 min) -> 600 s)",)
    provision(service)
    assert service.trunks[done.trunk_id].ringing_timeout.ToSeconds() == 600
    shorter = SipProvisioner(FakeGateway(service), username=USER, password=PASSWORD, ringing_timeout_s=40, answer_timeout_s=30)
    plan = shorter.plan()
    assert plan.trunk.changes == ("ringing_timeout (600 s -> 40 s)",)
    assert any("shorter than AGENT_ANSWER_TIMEOUT_S" in w for w in plan.warnings)
    shorter.apply(plan)
    assert service.trunks[done.trunk_id].ringing_timeout.ToSeconds() == 40
