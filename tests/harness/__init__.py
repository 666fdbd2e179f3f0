"""Non-test helpers that the suites and the benchmarks (bench/) both import.

bench/ never imports a test module (test_*.py) or a conftest.py. What it shares with the tests
lives in modules like these: `tests.harness` (the app under gunicorn and the worker in child
processes), `tests.doubles` (the LiveKit, OpenAI-compatible and Twilio doubles and simulators),
`tests.support` and `tests.aio` (API clients, SSE reading, an event loop thread), and the live
rig's library in tests/live (rig, app_env, audio, participant, steps). tests/unit/test_layout.py
checks it.
"""
