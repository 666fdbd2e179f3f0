"""LiveKit SIP provisioning: the inbound trunk Twilio authenticates against and the callee
dispatch rule that turns `sip:call_<id>@…` into room `call_<id>` (docs/architecture.md §3).

`SipProvisioner.plan()` reads what the server has and compares it with what the app needs;
`apply(plan)` creates or updates only what differs, so running it again changes nothing.
Ours are recognised by `metadata` (a JSON marker), never by name or id: an operator may rename
them, and ids differ between servers. Fields we do not manage (a trunk's `allowed_addresses`,
say, restricted to Twilio's signalling ranges) are kept as the operator set them.

Methods used, from livekit-api 1.2.2 `SipService` (the `*_sip_*` names are deprecated aliases):
list_inbound_trunk, create_inbound_trunk, update_inbound_trunk (replace),
list_dispatch_rule, create_dispatch_rule, update_dispatch_rule (replace). Updating replaces the
whole object (protocol `UpdateSIPInboundTrunkRequest_Replace.Apply` keeps only the id), so an
update starts from the server's copy and changes only our fields.

The trunk's `ringing_timeout` is how long LiveKit SIP keeps a caller's leg ringing while nobody in
the room publishes audio; without it livekit-sip v1.8.0 rejects the leg with 486 after 3 minutes
(pkg/sip/participant.go `defaultRingingTimeout`; the trunk value is used unclamped, handleInvite
in pkg/sip/inbound.go). It is set from LIVEKIT_SIP_RINGING_TIMEOUT_S and compared on every run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from google.protobuf.duration_pb2 import Duration
from livekit.protocol import sip as sip_proto

from app.errors import ConfigError, LiveKitFailed
from app.gateways.livekit import LiveKitGateway
from app.protocol import HEADERS_TO_ATTRIBUTES

MANAGED_BY = "warm-transfer"
MARKER = json.dumps({"managed_by": MANAGED_BY})
TRUNK_NAME = "warm-transfer inbound (Twilio)"
RULE_NAME = "warm-transfer callee rooms"
# The trunk maps the X-WT-* headers on Twilio's INVITE to participant attributes (the mapping is
# the wire contract's, app.protocol); the LiveKit webhook recognises customers and Agent B's phone
# leg by them (app.services.participants).
NEW_TRUNK = "<the new trunk>"


def is_ours(metadata: str) -> bool:
    try:
        value = json.loads(metadata or "")
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("managed_by") == MANAGED_BY


@dataclass(frozen=True)
class Step:
    """One object's fate: `create`, `update` (with the fields that differ) or `keep`."""

    kind: str
    action: str
    object_id: str | None = None
    changes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.action == "create":
            return f"create {self.kind}"
        if self.action == "update":
            return f"update {self.kind} {self.object_id}: {', '.join(self.changes)}"
        return f"no change to {self.kind} {self.object_id}"


@dataclass
class ProvisionPlan:
    trunk: Step
    rule: Step
    desired_trunk: sip_proto.SIPInboundTrunkInfo
    desired_rule: sip_proto.SIPDispatchRuleInfo
    warnings: list[str] = field(default_factory=list)
    # What the server had when the plan was made: {"trunk": info | None, "rule": info | None}.
    current: dict = field(default_factory=dict)

    @property
    def changes_anything(self) -> bool:
        return self.trunk.action != "keep" or self.rule.action != "keep"

    def lines(self) -> list[str]:
        return [self.trunk.describe(), self.rule.describe()] + [f"warning: {w}" for w in self.warnings]


@dataclass(frozen=True)
class Provisioned:
    trunk_id: str
    rule_id: str


def _trunk_changes(current: sip_proto.SIPInboundTrunkInfo, desired: sip_proto.SIPInboundTrunkInfo) -> list[str]:
    changes = [name for name in ("name", "metadata", "auth_username") if getattr(current, name) != getattr(desired, name)]
    if current.auth_password != desired.auth_password:
        changes.append("auth_password")  # named, never shown
    if list(current.numbers):
        changes.append("numbers (cleared: the SIP user part is a room name, not a number)")
    mapping = dict(current.headers_to_attributes)
    if any(mapping.get(h) != a for h, a in HEADERS_TO_ATTRIBUTES.items()):
        changes.append("headers_to_attributes")
    if current.ringing_timeout.ToSeconds() != desired.ringing_timeout.ToSeconds():
        was = f"{current.ringing_timeout.ToSeconds()} s" if current.HasField("ringing_timeout") else "unset (LiveKit's 3 min)"
        changes.append(f"ringing_timeout ({was} -> {desired.ringing_timeout.ToSeconds()} s)")
    return changes


def _merged_trunk(current: sip_proto.SIPInboundTrunkInfo, desired: sip_proto.SIPInboundTrunkInfo) -> sip_proto.SIPInboundTrunkInfo:
    merged = sip_proto.SIPInboundTrunkInfo()
    merged.CopyFrom(current)
    merged.name, merged.metadata = desired.name, desired.metadata
    merged.auth_username, merged.auth_password = desired.auth_username, desired.auth_password
    del merged.numbers[:]
    merged.headers_to_attributes.update(HEADERS_TO_ATTRIBUTES)
    merged.ringing_timeout.CopyFrom(desired.ringing_timeout)
    return merged


def _rule_changes(current: sip_proto.SIPDispatchRuleInfo, desired: sip_proto.SIPDispatchRuleInfo) -> list[str]:
    changes = [name for name in ("name", "metadata") if getattr(current, name) != getattr(desired, name)]
    if list(current.trunk_ids) != list(desired.trunk_ids):
        changes.append("trunk_ids")
    kind = current.rule.WhichOneof("rule")
    callee = current.rule.dispatch_rule_callee
    if kind != "dispatch_rule_callee" or callee.room_prefix or callee.randomize or callee.pin:
        changes.append("rule (callee, empty room prefix, no PIN)")
    return changes


def _merged_rule(current: sip_proto.SIPDispatchRuleInfo, desired: sip_proto.SIPDispatchRuleInfo) -> sip_proto.SIPDispatchRuleInfo:
    merged = sip_proto.SIPDispatchRuleInfo()
    merged.CopyFrom(current)
    merged.name, merged.metadata = desired.name, desired.metadata
    del merged.trunk_ids[:]
    merged.trunk_ids.extend(desired.trunk_ids)
    merged.rule.CopyFrom(desired.rule)
    return merged


# After a missed assignment the worker starts hold audio, which is what makes LiveKit SIP answer a
# leg nobody answered; allow it this long beyond AGENT_ANSWER_TIMEOUT_S (a worker restart, say).
HOLD_START_MARGIN_S = 30


class SipProvisioner:
    def __init__(self, gateway: LiveKitGateway, *, username: str, password: str, ringing_timeout_s: int = 600, answer_timeout_s: int = 30):
        if not username or not password:
            # A trunk without auth would let anyone who finds the SIP port into any room.
            raise ConfigError("Set LIVEKIT_SIP_USERNAME and LIVEKIT_SIP_PASSWORD: the inbound trunk must require digest auth.")
        self.gateway = gateway
        self.username = username
        self.password = password
        self.ringing_timeout_s = ringing_timeout_s
        self.answer_timeout_s = answer_timeout_s

    @classmethod
    def from_config(cls, settings, gateway: LiveKitGateway) -> SipProvisioner:
        return cls(
            gateway, username=settings.LIVEKIT_SIP_USERNAME, password=settings.LIVEKIT_SIP_PASSWORD,
            ringing_timeout_s=settings.LIVEKIT_SIP_RINGING_TIMEOUT_S, answer_timeout_s=settings.AGENT_ANSWER_TIMEOUT_S,
        )

    # -- desired state ----------------------------------------------------------------------
    def desired_trunk(self) -> sip_proto.SIPInboundTrunkInfo:
        return sip_proto.SIPInboundTrunkInfo(
            name=TRUNK_NAME,
            metadata=MARKER,
            auth_username=self.username,
            auth_password=self.password,
            headers_to_attributes=HEADERS_TO_ATTRIBUTES,
            ringing_timeout=Duration(seconds=self.ringing_timeout_s),
        )

    @staticmethod
    def desired_rule(trunk_id: str) -> sip_proto.SIPDispatchRuleInfo:
        return sip_proto.SIPDispatchRuleInfo(
            name=RULE_NAME,
            metadata=MARKER,
            trunk_ids=[trunk_id],
            rule=sip_proto.SIPDispatchRule(dispatch_rule_callee=sip_proto.SIPDispatchRuleCallee(room_prefix="", randomize=False)),
        )

    # -- reading and planning -----------------------------------------------------------------
    def _list(self):
        trunks = self.gateway.sip("list SIP inbound trunks", lambda s: s.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest()))
        rules = self.gateway.sip("list SIP dispatch rules", lambda s: s.list_dispatch_rule(sip_proto.ListSIPDispatchRuleRequest()))
        return list(trunks.items), list(rules.items)

    def plan(self) -> ProvisionPlan:
        trunks, rules = self._list()
        our_trunks = [t for t in trunks if is_ours(t.metadata)]
        our_rules = [r for r in rules if is_ours(r.metadata)]
        for kind, found in (("inbound trunks", [t.sip_trunk_id for t in our_trunks]), ("dispatch rules", [r.sip_dispatch_rule_id for r in our_rules])):
            if len(found) > 1:
                raise LiveKitFailed(
                    f"LiveKit has {len(found)} warm-transfer {kind} ({', '.join(found)}); delete all but one and run again.",
                    code="sip_provisioning_ambiguous",
                )
        desired_trunk = self.desired_trunk()
        if our_trunks:
            trunk_id = our_trunks[0].sip_trunk_id
            changes = _trunk_changes(our_trunks[0], desired_trunk)
            trunk_step = Step("inbound trunk", "update" if changes else "keep", trunk_id, tuple(changes))
        else:
            trunk_step, trunk_id = Step("inbound trunk", "create"), NEW_TRUNK
        desired_rule = self.desired_rule(trunk_id)
        if our_rules:
            changes = _rule_changes(our_rules[0], desired_rule)
            rule_step = Step("dispatch rule", "update" if changes else "keep", our_rules[0].sip_dispatch_rule_id, tuple(changes))
        else:
            rule_step = Step("dispatch rule", "create")
        current = {"trunk": our_trunks[0] if our_trunks else None, "rule": our_rules[0] if our_rules else None}
        warnings = _foreign_catch_alls(trunks, rules)
        if self.ringing_timeout_s < self.answer_timeout_s + HOLD_START_MARGIN_S:
            warnings.append(
                f"LIVEKIT_SIP_RINGING_TIMEOUT_S={self.ringing_timeout_s} is shorter than AGENT_ANSWER_TIMEOUT_S + {HOLD_START_MARGIN_S} s: "
                "a caller whose agent does not answer may be rejected by LiveKit SIP before hold audio answers them "
                "(they go back to Twilio's hold loop, not dropped, but lose their place in the room)"
            )
        return ProvisionPlan(trunk_step, rule_step, desired_trunk, desired_rule, warnings, current)

    # -- applying -------------------------------------------------------------------------------
    def apply(self, plan: ProvisionPlan) -> Provisioned:
        current_trunk, current_rule = plan.current["trunk"], plan.current["rule"]
        if plan.trunk.action == "create":
            request = sip_proto.CreateSIPInboundTrunkRequest(trunk=plan.desired_trunk)
            trunk_id = self.gateway.sip("create the SIP inbound trunk", lambda s: s.create_inbound_trunk(request)).sip_trunk_id
        else:
            trunk_id = current_trunk.sip_trunk_id
            if plan.trunk.action == "update":
                merged = _merged_trunk(current_trunk, plan.desired_trunk)
                self.gateway.sip("update the SIP inbound trunk", lambda s: s.update_inbound_trunk(trunk_id, merged))
        desired_rule = self.desired_rule(trunk_id)
        if current_rule is None:
            request = sip_proto.CreateSIPDispatchRuleRequest(dispatch_rule=desired_rule)
            rule_id = self.gateway.sip("create the SIP dispatch rule", lambda s: s.create_dispatch_rule(request)).sip_dispatch_rule_id
        else:
            rule_id = current_rule.sip_dispatch_rule_id
            if _rule_changes(current_rule, desired_rule):  # also when the trunk was just re-created
                merged_rule = _merged_rule(current_rule, desired_rule)
                self.gateway.sip("update the SIP dispatch rule", lambda s: s.update_dispatch_rule(rule_id, merged_rule))
        return Provisioned(trunk_id, rule_id)


def _foreign_catch_alls(trunks, rules) -> list[str]:
    """Objects that are not ours but could take our calls: livekit-sip refuses a call that
    matches two equally specific trunks, and a rule without trunks applies to every trunk."""
    warnings = []
    for t in trunks:
        if not is_ours(t.metadata) and not list(t.numbers) and not list(t.allowed_addresses):
            warnings.append(f"inbound trunk {t.sip_trunk_id} ({t.name or 'unnamed'}) accepts calls to any number from anywhere; it may conflict with ours")
    for r in rules:
        if not is_ours(r.metadata) and not list(r.trunk_ids):
            warnings.append(f"dispatch rule {r.sip_dispatch_rule_id} ({r.name or 'unnamed'}) applies to every trunk; it may route our calls elsewhere")
    return warnings
