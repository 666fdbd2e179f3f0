"""How calls, transfers, context entries and summaries look in JSON responses and events."""
from __future__ import annotations

from datetime import datetime

from app.models import Agent, Call, ContextEntry, Recording, Summary, Supervision, Transfer


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def agent_dict(agent: Agent) -> dict:
    return {
        "id": agent.id,
        "name": agent.name,
        "presence": agent.presence,
        "busy": agent.active_call_id is not None,
        "has_phone": bool(agent.phone),
        "role": agent.role or "agent",
    }


def supervision_dict(sup: Supervision) -> dict:
    return {
        "id": sup.id,
        "session_id": sup.call_id,
        "supervisor_id": sup.supervisor_id,
        "mode": sup.mode,
        "started_at": sup.started_at.isoformat(),
        "ended_at": sup.ended_at.isoformat() if sup.ended_at else None,
        "end_reason": sup.end_reason,
    }


def entry_dict(entry: ContextEntry) -> dict:
    return {
        "id": entry.id,
        "author": entry.author,
        "source": entry.source,
        "text": entry.text,
        "created_at": iso(entry.created_at),
    }


def summary_dict(summary: Summary | None) -> dict | None:
    if summary is None:
        return None
    return {
        "id": summary.id,
        "kind": summary.kind,
        "text": summary.text,
        "speech": summary.speech,
        "structured": summary.structured,
        "provider": summary.provider,
        "model": summary.model,
        "degraded": summary.degraded,
        "degraded_reason": summary.degraded_reason,
        "covering_entry_id": summary.covering_entry_id,
        "edited_by": summary.edited_by,
        "created_at": iso(summary.created_at),
    }


def transfer_dict(transfer: Transfer, summary: Summary | None = None) -> dict:
    return {
        "id": transfer.id,
        "session_id": transfer.call_id,
        "status": transfer.status,
        "transfer_room": transfer.transfer_room,
        "from_agent_id": transfer.from_agent_id,
        "to_agent_id": transfer.to_agent_id,
        "to_phone": transfer.to_phone,
        "to_team": transfer.to_team,
        "reason": transfer.reason,
        "reason_code": transfer.reason_code,
        "error_code": transfer.error_code,
        "leg_status": transfer.leg_status,
        "requested_at": iso(transfer.requested_at),
        "answered_at": iso(transfer.answered_at),
        "bridged_at": iso(transfer.bridged_at),
        "handed_over_at": iso(transfer.handed_over_at),
        "ended_at": iso(transfer.ended_at),
        "summary": summary_dict(summary),
    }


def recording_dict(recording: Recording | None) -> dict | None:
    """What the console shows of a call's recording; never a Twilio URL (the audio is served by
    GET /api/calls/<id>/recording)."""
    if recording is None:
        return None
    return {"status": recording.status, "duration_s": recording.duration_s, "channels": recording.channels}


def call_dict(call: Call) -> dict:
    return {
        "session_id": call.id,
        "status": call.status,
        "customer_name": call.customer_name,
        "room_name": call.room_name,
        "agent_id": call.agent_id,
        "channel": call.channel,
        "caller_number": call.caller_number,
        "created_at": iso(call.created_at),
        "assigned_at": iso(call.assigned_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "end_reason": call.end_reason,
    }
