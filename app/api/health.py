"""Health: is the app up, and what state are the things it depends on in?"""
from __future__ import annotations

from flask import jsonify
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.api import bp
from app.api.guards import services
from app.db import MIGRATIONS
from app.errors import ServiceUnavailable
from app.models import SchemaMigration


@bp.get("/health")
def health():
    svc = services()
    settings = svc.settings
    body: dict = {"status": "healthy"}
    try:
        with svc.db.reading() as s:
            applied = set(s.scalars(select(SchemaMigration.version)))
        missing = [v for v, _name, _fn in MIGRATIONS if v not in applied]
        body["db"] = {"status": "ok" if not missing else "needs_migration", "backend": "sqlite" if svc.db.is_sqlite else "postgresql"}
        if missing:
            body["status"] = "degraded"
    except SQLAlchemyError as err:
        body["status"] = "degraded"
        body["db"] = {"status": "unavailable", "error": type(err).__name__}
    try:
        svc.livekit.ping()
        body["livekit"] = {"status": "ok", "url": settings.LIVEKIT_HTTP_URL}
    except ServiceUnavailable as err:
        body["livekit"] = {"status": "unavailable", "url": settings.LIVEKIT_HTTP_URL, "error": err.message}
    provider = svc.summaries.summarizer.provider
    body["llm"] = {"provider": provider.name, "model": provider.model}
    body["telephony"] = {
        "configured": settings.telephony_configured,
        "message": None if settings.telephony_configured else "Set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER to enable phone calls.",
    }
    body["sse_subscribers"] = svc.dispatcher.subscriber_count()
    return jsonify(body), (200 if body["status"] == "healthy" else 503)
