"""The browser pages: `/` (customer, "Call Transfer System"), `/agent` (agent console) and
`/agent-b` ("Agent B Dashboard"), names kept from the original product; `/supervisor`
("Supervisor", the floor and transfer figures); and the hold music
Twilio plays to queued phone callers.

The pages are small Jinja templates under `static/pages/`; everything they do happens in the ES
modules under `static/js/`, which talk to the JSON API. Every page is served with a strict
Content-Security-Policy: scripts only from this origin (no inline script, no eval), network
connections only to this origin and the LiveKit server the browsers use (LIVEKIT_WS_URL, in its
ws/wss and http/https forms: livekit-client also makes HTTP requests to it when a connection
fails, to explain why).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from urllib.parse import urlsplit

from flask import Blueprint, Response, render_template

from app.api.guards import current_agent
from app.audio import HoldAudioError, build_hold_audio, wav_bytes
from app.config import PROJECT_ROOT
from app.current import services
from app.services.twilio_urls import HOLD_MUSIC_PATH

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__, template_folder=str(PROJECT_ROOT / "static" / "pages"))

_SCHEME_PAIRS = {"ws": "http", "wss": "https", "http": "ws", "https": "wss"}


def livekit_origins(ws_url: str) -> list[str]:
    """The LiveKit origin in both its WebSocket and HTTP forms, e.g. ws://h:7880 http://h:7880."""
    parts = urlsplit(ws_url)
    if parts.scheme not in _SCHEME_PAIRS or not parts.netloc:
        return []
    return [f"{parts.scheme}://{parts.netloc}", f"{_SCHEME_PAIRS[parts.scheme]}://{parts.netloc}"]


def content_security_policy(ws_url: str) -> str:
    connect = " ".join(["'self'", *livekit_origins(ws_url)])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            # Remote audio plays from MediaStreams (srcObject), which CSP does not govern;
            # blob: covers livekit-client's fallback of attaching by object URL.
            "media-src 'self' blob:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def _page(template: str, **context) -> Response:
    settings = services().settings
    response = Response(render_template(template, **context), mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy(settings.LIVEKIT_WS_URL)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = "microphone=(self), camera=(), geolocation=(), payment=()"
    # A page is a shell that loads its state from the API; a stale cached copy would pin old JS.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def customer():
    # An agent who is signed in is offered their console here, as the original `/` served both.
    auth = current_agent()
    return _page("customer.html", agent_name=auth.agent_name if auth else None)


@bp.get("/agent")
def agent_console():
    return _page("console.html", mode="agent", title="Agent Console")


@bp.get("/agent-b")
def agent_b_dashboard():
    return _page("console.html", mode="agent-b", title="Agent B Dashboard")


@bp.get("/supervisor")
def supervisor():
    # The shell is the same for everyone: it signs in, and shows an agent that the page is for
    # supervisors. Everything on it comes from supervisor routes, which answer an agent 403.
    return _page("supervisor.html")


# Twilio plays this to phone callers waiting for an agent (`<Play>` in the queue's hold loop):
# the same music the worker plays into held calls' rooms, as 8 kHz 16-bit mono WAV (telephone
# quality; Twilio's <Play> takes WAV). Long enough that the loop's redirect is rare, short
# enough that a caller hears the spoken reminder now and then.
HOLD_MUSIC_LOOP_S = 20


@lru_cache(maxsize=4)
def _hold_music_wav(path: str) -> bytes:
    try:
        music = build_hold_audio(path).music
    except HoldAudioError as err:
        log.error("HOLD_AUDIO_FILE unusable (%s); Twilio gets the built-in hold music", err)
        music = build_hold_audio("").music
    return wav_bytes(music, seconds=HOLD_MUSIC_LOOP_S)


@bp.get(HOLD_MUSIC_PATH)
def hold_music():
    settings = services().settings
    response = Response(_hold_music_wav(settings.HOLD_AUDIO_FILE), mimetype="audio/wav")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
