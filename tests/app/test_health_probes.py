"""Liveness and readiness for load balancers and orchestrators: live asks nothing, ready asks the
database (reachable, migrated) and LiveKit, both from the per-process caches."""
from __future__ import annotations

from sqlalchemy import delete

from app import create_app
from app.models import SchemaMigration


def test_live_and_ready_when_everything_answers(client, livekit_double):
    live = client.get("/api/health/live")
    assert live.status_code == 200 and live.json == {"status": "live"} and live.headers["Cache-Control"] == "no-store"
    ready = client.get("/api/health/ready")
    assert ready.status_code == 200 and ready.json == {"status": "ready"} and ready.headers["Cache-Control"] == "no-store"
    asked = len(livekit_double.calls("ListRooms"))
    for _ in range(5):  # a load balancer probing often costs LiveKit nothing more
        assert client.get("/api/health/ready").status_code == 200
    assert len(livekit_double.calls("ListRooms")) == asked


def test_not_ready_while_livekit_fails_but_still_live(client, livekit_double):
    livekit_double.fail_next("ListRooms", 503, "unavailable", "down")
    ready = client.get("/api/health/ready")
    assert ready.status_code == 503 and ready.json == {"status": "not_ready"}
    assert client.get("/api/health/live").status_code == 200


def test_not_ready_when_a_migration_is_missing(app, services):
    with services.db.transaction() as s:
        s.execute(delete(SchemaMigration).where(SchemaMigration.version == max(s.scalars(SchemaMigration.__table__.select().with_only_columns(SchemaMigration.version)))))
    ready = app.test_client().get("/api/health/ready")
    assert ready.status_code == 503 and ready.json == {"status": "not_ready"}


def test_live_but_not_ready_without_a_database(config, tmp_path):
    application = create_app(dict(config, DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/nope.db"))
    try:
        client = application.test_client()
        assert client.get("/api/health/live").status_code == 200
        ready = client.get("/api/health/ready")
        assert ready.status_code == 503 and ready.json == {"status": "not_ready"}
    finally:
        application.extensions["wt"].close()
