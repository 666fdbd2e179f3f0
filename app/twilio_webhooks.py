"""Twilio's webhooks (docs/architecture.md §9): parse, check the signature, call the service, answer TwiML.

Every route is signature-checked by `twilio_webhook`: `X-Twilio-Signature` must be Twilio's
HMAC of the exact URL Twilio requested plus the form fields (or, for a JSON body, of the URL
whose `bodySHA256` query parameter hashes that body). The URL is rebuilt from PUBLIC_BASE_URL;
behind a proxy with TRUST_PROXY set (ProxyFix has already applied its X-Forwarded-* headers) or
without PUBLIC_BASE_URL, from the request itself. Anything else is a 403.

Responses are always `text/xml`. A failure inside a webhook still answers valid TwiML, an
apology that hangs up, with status 200 so Twilio plays it instead of its own "application
error"; only bad signatures (403), malformed requests (4xx) and a deployment without Twilio
credentials (503, code in `X-WT-Error`) are refused.
"""
from __future__ import annotations

import json
import logging
from functools import wraps

from flask import Blueprint, Response, g, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

import twiml
from app import logs
from app.api.validation import MAX_DEPTH, nesting_depth
from app.current import services
from app.errors import AppError, BadRequest
from app.metrics_web import time_webhooks
from app.services import twilio_urls as paths
from app.services.sip_diagnostics import parse_sip_code
from app.services.twilio_urls import WebhookUrls

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix=paths.PREFIX)
time_webhooks(bp)  # first, so the signature check's time counts too
SIGNATURE_HEADER = "X-Twilio-Signature"
ERROR_HEADER = "X-WT-Error"


def _xml(document: VoiceResponse, status: int = 200, headers: dict | None = None) -> Response:
    return Response(str(document), status=status, mimetype="text/xml", headers=headers)


def _params() -> dict[str, str]:
    return g.twilio_params


def _urls() -> WebhookUrls:
    return WebhookUrls(services().settings.PUBLIC_BASE_URL or request.url_root)


def _signed_urls(settings) -> list[str]:
    """The URLs Twilio may have signed for this request (see module doc)."""
    urls = []
    if settings.PUBLIC_BASE_URL:
        query = request.query_string.decode("utf-8", "replace")
        urls.append(settings.PUBLIC_BASE_URL.rstrip("/") + request.path + ("?" + query if query else ""))
    if settings.TRUST_PROXY or not settings.PUBLIC_BASE_URL:
        urls.append(request.url)
    return urls


def _read_params() -> tuple[object, dict[str, str]]:
    """(what the signature covers, the fields as a flat dict)."""
    if request.mimetype == "application/json":
        if nesting_depth(request.get_data()) > MAX_DEPTH:
            raise BadRequest("The body is nested too deeply.", code="invalid_json")
        raw = request.get_data(as_text=True)
        try:
            body = json.loads(raw or "{}")
        except ValueError:
            raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.", code="invalid_json")
        return raw, {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    form = request.form
    return form, {k: form.get(k, "") for k in form}


def twilio_webhook(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        svc = services()
        gateway = svc.twilio
        if gateway is None:
            log.warning("Twilio webhook %s refused: TWILIO_* is not configured", request.path)
            return _xml(twiml.internal_error(svc.phone_legs.voice), 503, {ERROR_HEADER: "telephony_not_configured"})
        signed, fields = _read_params()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not any(gateway.signature_valid(url, signed, signature) for url in _signed_urls(svc.settings)):
            log.warning("Twilio webhook %s: bad or missing %s", request.path, SIGNATURE_HEADER)
            return _xml(VoiceResponse(), 403, {ERROR_HEADER: "invalid_signature"})
        g.twilio_params = fields
        logs.bind(call_sid=fields.get("CallSid"))  # the call behind it is bound by the service that finds it
        return view(*args, **kwargs)

    return wrapper


@bp.errorhandler(Exception)
def _webhook_failed(err: Exception):
    """Registered on this blueprint, so it wins over the app's JSON handlers for these routes."""
    voice = services().phone_legs.voice
    # Always 200: Twilio does not execute TwiML that comes with a 4xx or 5xx, it plays its own
    # "application error" instead. The caller should hear our apology; the header says why.
    if isinstance(err, AppError) and err.status < 500:
        log.warning("Twilio webhook %s: %s (%s)", request.path, err.message, err.code)
        return _xml(twiml.internal_error(voice), 200, {ERROR_HEADER: err.code})
    if isinstance(err, HTTPException) and (err.code or 500) < 500:
        return _xml(twiml.internal_error(voice), 200, {ERROR_HEADER: "bad_request"})
    if isinstance(err, AppError):
        log.error("Twilio webhook %s failed: %s", request.path, err.message)
    else:
        log.exception("Twilio webhook %s failed", request.path)
    return _xml(twiml.internal_error(voice), 200)


def _require(name: str) -> str:
    value = _params().get(name, "")
    if not value:
        raise BadRequest(f"Missing {name}.")
    return value


# -- the customer's call --------------------------------------------------------------------------
@bp.post(paths.VOICE)
@twilio_webhook
def voice():
    after_hold = request.args.get(paths.HELD_FLAG) == "1"
    response = services().telephony.inbound(_require("CallSid"), _params().get("From", ""), _urls(), after_hold=after_hold)
    return _xml(response)


@bp.post(paths.DIAL_ACTION)
@twilio_webhook
def dial_action():
    p = _params()
    response = services().telephony.dial_ended(
        _require("CallSid"), p.get("CallStatus", ""), p.get("DialCallStatus", ""), _urls(), sip_code=parse_sip_code(p.get("DialSipResponseCode"))
    )
    return _xml(response)


@bp.post(paths.STATUS)
@twilio_webhook
def status():
    p = _params()
    services().telephony.call_progress(
        _require("CallSid"), p.get("CallStatus", ""), error_code=p.get("ErrorCode") or None, sip_code=parse_sip_code(p.get("SipResponseCode"))
    )
    return _xml(VoiceResponse())


@bp.post(paths.TRANSCRIPTION)
@twilio_webhook
def transcription():
    services().telephony.transcribed(_params())
    return _xml(VoiceResponse())


@bp.post(paths.RECORDING)
@twilio_webhook
def recording():
    """`<Dial recordingStatusCallback>`: a recording of the caller's bridge is ready (or absent).
    Answered with an empty document whatever it names; Twilio ignores the body of this callback."""
    services().recordings.reported(_params())
    return _xml(VoiceResponse())


# -- Agent B's phone leg --------------------------------------------------------------------------
@bp.post(paths.TRANSFER_ANSWER)
@twilio_webhook
def transfer_answer(transfer_id: str):
    answered_by = _params().get("AnsweredBy") or None
    return _xml(services().phone_transfers.answer(transfer_id, _require("CallSid"), answered_by, _urls()))


@bp.post(paths.TRANSFER_GATHER)
@twilio_webhook
def transfer_gather(transfer_id: str):
    return _xml(services().phone_transfers.gather(transfer_id, _require("CallSid"), _params().get("Digits"), _urls()))


@bp.post(paths.TRANSFER_STATUS)
@twilio_webhook
def transfer_status(transfer_id: str):
    p = _params()
    services().phone_transfers.leg_progress(
        transfer_id,
        _require("CallSid"),
        p.get("CallStatus", ""),
        error_code=p.get("ErrorCode") or None,
        error_message=p.get("ErrorMessage") or None,
        sip_response_code=parse_sip_code(p.get("SipResponseCode")),
    )
    return _xml(VoiceResponse())


@bp.post(paths.TRANSFER_BRIDGE)
@twilio_webhook
def transfer_bridge(transfer_id: str):
    p = _params()
    response = services().phone_transfers.bridge_ended(
        transfer_id,
        _require("CallSid"),
        p.get("DialCallStatus", ""),
        parse_sip_code(p.get("DialSipResponseCode")),
        into_call=request.args.get(paths.BRIDGE_ROOM_FLAG) == "call",
    )
    return _xml(response)
