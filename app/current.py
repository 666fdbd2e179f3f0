"""The one way Flask code reaches the app's services: `services()`.

`create_app` installs the container `app.services.build_services` made; blueprints, webhooks,
pages and CLI commands read it back here. Services never import Flask (they get what they need
through their constructors), so this is the only place the two meet.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from app.services import Services

# Tests and benchmarks reach the container as `app.extensions["wt"]`; the key stays.
EXTENSION_KEY = "wt"


def install(app: Flask, services: Services | None) -> None:
    app.extensions[EXTENSION_KEY] = services


def services() -> Services:
    return current_app.extensions[EXTENSION_KEY]
