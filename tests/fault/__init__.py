"""Fault suite: the app under gunicorn on PostgreSQL with each dependency broken mid-transfer."""
