"""Operator commands: `flask --app app init-db | worker | check-config | tasks list | tasks retry |
agents add | list | demo | set-password | set-teams | set-role | disable | enable | revoke-sessions |
teams add | list | livekit provision-sip | summarize FILE`."""
from __future__ import annotations

import json
import logging
import secrets

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app import outbox, protocol_js
from app.current import services
from app.db import migrate
from app.errors import AppError, ConfigError
from app.gateways.livekit_sip import SipProvisioner
from app.protocol import ACCOUNT_ROLES
from app.summaries.base import ContextLine, SummaryInput
from app.summaries.redact import redact

log = logging.getLogger(__name__)


def summary_input_from_json(raw: dict) -> SummaryInput:
    """Validate a context file's shape and redact it, exactly as stored context would be."""
    if not isinstance(raw, dict) or not isinstance(raw.get("customer_name"), str) or not isinstance(raw.get("entries"), list):
        raise ValueError('expected {"customer_name": str, "entries": [{"author": str, "text": str}]}')
    lines = []
    for i, entry in enumerate(raw["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("author"), str) or not isinstance(entry.get("text"), str):
            raise ValueError(f"entry {i} must have string author and text")
        lines.append(ContextLine(entry["author"], "note", redact(entry["text"])))
    return SummaryInput(raw["customer_name"], tuple(lines))


def register_cli(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db():
        """Create or migrate the schema (idempotent; the Procfile's release step)."""
        applied = migrate(services().db)
        click.echo("Applied: " + ", ".join(applied) if applied else "Schema is up to date.")

    @app.cli.command("summarize")
    @click.argument("file", type=click.File("r"))
    def summarize(file):
        """Print the summary of a context file as JSON, using the configured provider.

        FILE holds {"customer_name": ..., "entries": [{"author": ..., "text": ...}]} ("-" = stdin).
        """
        svc = services()
        try:
            data = summary_input_from_json(json.load(file))
        except (ValueError, KeyError, TypeError) as err:
            raise click.ClickException(f"{file.name}: not a context file ({err})") from err
        result = svc.summaries.summarizer.summarize(data, svc.settings.LLM_TIMEOUT_S)
        out = result.structured.model_dump() | {
            "text": result.text,
            "speech": result.speech,
            "provider": result.provider,
            "model": result.model,
            "degraded": result.degraded,
            "degraded_reason": result.degraded_reason,
        }
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))

    @app.cli.command("protocol-js")
    def protocol_js_command():
        """Write static/js/lib/protocol.js, the browser's copy of app/protocol.py (commit it)."""
        changed = protocol_js.write()
        click.echo(f"{'Wrote' if changed else 'Unchanged:'} {protocol_js.JS_PATH}")

    livekit = AppGroup("livekit", help="Set up LiveKit for this app.")
    app.cli.add_command(livekit)

    @livekit.command("provision-sip")
    @click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
    def provision_sip(dry_run):
        """Create or update the LiveKit SIP inbound trunk and callee dispatch rule (idempotent)."""
        svc = services()
        try:
            provisioner = SipProvisioner.from_config(svc.settings, svc.livekit)
            plan = provisioner.plan()
            for line in plan.lines():
                click.echo(("would " if dry_run and not line.startswith(("no change", "warning")) else "") + line)
            if dry_run:
                click.echo("Dry run: nothing was changed." if plan.changes_anything else "Dry run: LiveKit is already provisioned; no change.")
                return
            if not plan.changes_anything:
                click.echo("LiveKit is already provisioned; no change.")
            done = provisioner.apply(plan)
        except (AppError, ConfigError) as err:
            raise click.ClickException(getattr(err, "message", str(err))) from err
        click.echo(f"Inbound trunk: {done.trunk_id}\nDispatch rule: {done.rule_id}")
        for line in twilio_instructions(svc.settings):
            click.echo(line)

    @app.cli.command("check-config")
    def check_config():
        """List every problem with the configuration (environment and .env) at once; exit 1 if any."""
        from app.config import settings_problems

        problems = settings_problems()
        if current_app.extensions.get("wt_config_error"):
            problems.append(current_app.extensions["wt_config_error"])
        settings = current_app.config
        click.echo(f"APP_ENV={settings['APP_ENV']}; database {settings['DATABASE_URL'].split(':')[0]}; "
                   f"telephony {'configured' if settings['TWILIO_ACCOUNT_SID'] else 'off'}")
        if not problems:
            click.echo("Configuration OK.")
            return
        for problem in problems:
            click.echo(f"- {problem}", err=True)
        raise click.exceptions.Exit(1)

    @app.cli.command("worker")
    @click.option("--no-hold-audio", is_flag=True, help="Run tasks only; another worker plays hold audio.")
    def worker(no_hold_audio):
        """Run tasks (side effects, timers, housekeeping) and hold audio until SIGTERM/SIGINT.

        Any number of workers may run, on any machines, against the same database."""
        import signal

        from app.worker import Worker

        svc = services()
        migrate(svc.db)
        try:
            runner = Worker(svc, hold_audio=not no_hold_audio)
        except ConfigError as err:  # e.g. an unreadable HOLD_AUDIO_FILE: say so, do not start
            raise click.ClickException(str(err)) from err
        exporter = None
        if svc.settings.WORKER_METRICS_PORT:
            from app.worker.metrics_server import MetricsServer

            exporter = MetricsServer(svc.settings.API_HOST, svc.settings.WORKER_METRICS_PORT, svc.settings.METRICS_TOKEN).start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: runner.request_stop())
        # Logged, not echoed: in production the worker's output is JSON lines only (app.logs).
        metrics_note = f", metrics on port {exporter.port}" if exporter else ""
        log.info("Worker %s: %d task threads, hold audio %s%s.", runner.holder, runner.threads, "off" if no_hold_audio else "on", metrics_note)
        try:
            runner.run_forever()
        finally:
            if exporter is not None:
                exporter.stop()
            svc.close()  # LiveKit's HTTP session and the database pool, closed rather than collected
        log.info("Worker stopped.")

    tasks = AppGroup("tasks", help="Inspect and retry the worker's tasks.")
    app.cli.add_command(tasks)

    @tasks.command("list")
    @click.option("--failed", "state", flag_value="failed", help="Only tasks that gave up.")
    @click.option("--pending", "state", flag_value="pending", help="Only tasks waiting to run.")
    @click.option("--running", "state", flag_value="running", help="Only tasks being run now.")
    @click.option("--limit", default=50, show_default=True)
    def tasks_list(state, limit):
        """The newest tasks (id, state, kind, attempts, due, last error)."""
        svc = services()
        counts = outbox.counts(svc.db)
        click.echo("Tasks: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"))
        for t in outbox.list_tasks(svc.db, state=state, limit=limit):
            error = (t.last_error or "").replace("\n", " ")[:160]
            click.echo(f"{t.id}\t{t.state}\t{t.kind}\t{t.attempts}/{t.max_attempts}\t{t.due_at.isoformat(timespec='seconds')}\t{error}")

    @tasks.command("retry")
    @click.argument("task_ids", nargs=-1, type=int)
    @click.option("--all-failed", is_flag=True, help="Retry every failed task.")
    def tasks_retry(task_ids, all_failed):
        """Put failed tasks back to pending with fresh attempts."""
        if not task_ids and not all_failed:
            raise click.ClickException("Give task ids, or --all-failed.")
        count = outbox.retry_failed(services().db, None if all_failed else list(task_ids))
        click.echo(f"{count} task(s) queued again.")

    agents = AppGroup("agents", help="Manage agent accounts.")
    app.cli.add_command(agents)

    @agents.command("add")
    @click.argument("agent_id")
    @click.option("--name", required=True, help="Display name shown to customers and colleagues.")
    # Prompted (hidden, twice) when not given: a password on the command line ends up in shell
    # history and in `ps` output for every user of the machine.
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters; prompted if omitted.")
    @click.option("--phone", default=None, help="E.164 number for phone transfers, e.g. +14155550100.")
    @click.option("--team", "teams_", multiple=True, help="A team the agent belongs to (repeat for several).")
    @click.option("--role", type=click.Choice(ACCOUNT_ROLES), default="agent", show_default=True, help="Supervisors also take calls.")
    def add(agent_id, name, password, phone, teams_, role):
        """Create an agent account."""
        try:
            agent = services().agents.add(agent_id, name, password, phone, teams=tuple(teams_), role=role)
        except AppError as err:
            raise click.ClickException(err.message) from err
        click.echo(f"Created agent {agent.id} ({agent.name})" + (f" in {', '.join(teams_)}." if teams_ else "."))

    @agents.command("list")
    def list_():
        """List agents with presence and current call."""
        rows = services().agents.all()
        if not rows:
            click.echo("No agents yet. Add one with: flask --app app agents add ID --name NAME")
        for a in rows:
            presence = "disabled" if a.disabled_at is not None else a.presence
            click.echo(f"{a.id}\t{a.name}\t{a.phone or '-'}\t{presence}\t{a.active_call_id or '-'}\t{a.role or 'agent'}")

    def _admin(action, *args):
        try:
            return action(*args)
        except AppError as err:
            raise click.ClickException(err.message) from err

    @agents.command("set-password")
    @click.argument("agent_id")
    @click.option("--password", prompt="New password", hide_input=True, confirmation_prompt=True, help="Prompted if omitted.")
    def set_password(agent_id, password):
        """Give an agent a new password; every session they have ends."""
        _admin(services().agents.set_password, agent_id, password)
        click.echo(f"Password of {agent_id} changed; their open sessions have ended.")

    @agents.command("set-teams")
    @click.argument("agent_id")
    @click.argument("team_ids", nargs=-1)
    def set_teams(agent_id, team_ids):
        """Make TEAM_IDS exactly the agent's teams (none: in no team)."""
        _admin(services().teams.set_agent_teams, agent_id, tuple(team_ids))
        click.echo(f"{agent_id} is in {', '.join(dict.fromkeys(team_ids))}." if team_ids else f"{agent_id} is in no team.")

    @agents.command("set-role")
    @click.argument("agent_id")
    @click.argument("role", type=click.Choice(ACCOUNT_ROLES))
    def set_role(agent_id, role):
        """Make an account an agent or a supervisor (from their next request on)."""
        _admin(services().agents.set_role, agent_id, role)
        click.echo(f"{agent_id} is now {'a supervisor' if role == 'supervisor' else 'an agent'}.")

    @agents.command("disable")
    @click.argument("agent_id")
    def disable(agent_id):
        """Stop an account signing in or getting calls; its sessions end now. A call it is on
        goes on until handed over or ended."""
        _admin(services().agents.disable, agent_id)
        click.echo(f"{agent_id} disabled; their open sessions have ended.")

    @agents.command("enable")
    @click.argument("agent_id")
    def enable(agent_id):
        """Let a disabled account sign in again."""
        _admin(services().agents.enable, agent_id)
        click.echo(f"{agent_id} enabled.")

    @agents.command("revoke-sessions")
    @click.argument("agent_id")
    def revoke_sessions(agent_id):
        """Sign an agent out everywhere (a lost laptop, a shared screen)."""
        count = _admin(services().agents.revoke_sessions, agent_id)
        click.echo(f"{count} session(s) of {agent_id} ended.")

    @agents.command("demo")
    def demo():
        """Create two demo agents and a demo supervisor (for /supervisor) with random passwords,
        only if no agent exists yet."""
        svc = services()
        if svc.agents.count():
            click.echo("Agents already exist; no demo agents created.")
            return
        click.echo("Demo agents (passwords are shown once; keep them):")
        for agent_id, name, role in (("agent-a", "Demo Agent A", "agent"), ("agent-b", "Demo Agent B", "agent"),
                                     ("supervisor", "Demo Supervisor", "supervisor")):
            password = secrets.token_urlsafe(9)
            svc.agents.add(agent_id, name, password, role=role)
            click.echo(f"  {agent_id}  password: {password}" + ("  (supervisor: /supervisor)" if role == "supervisor" else ""))

    register_team_cli(app)


def register_team_cli(app: Flask) -> None:
    teams = AppGroup("teams", help="Manage the teams transfers can be addressed to.")
    app.cli.add_command(teams)

    @teams.command("add")
    @click.argument("team_id")
    @click.option("--name", required=True, help="Display name shown to agents, e.g. Billing.")
    @click.option("--keyword", "keywords", multiple=True, help="A word a call for this team uses (repeat for several); the offline summary suggests the team from these and its name.")
    def add_team(team_id, name, keywords):
        """Create a team. Put agents in it with `agents add --team` or `agents set-teams`."""
        try:
            team = services().teams.add(team_id, name, tuple(keywords))
        except AppError as err:
            raise click.ClickException(err.message) from err
        click.echo(f"Created team {team.id} ({team.name}).")

    @teams.command("list")
    def list_teams():
        """List teams with their keywords and members."""
        rows = services().teams.listing()
        if not rows:
            click.echo("No teams yet. Add one with: flask --app app teams add ID --name NAME")
        for team, members in rows:
            click.echo(f"{team.id}\t{team.name}\t{','.join(team.keywords or []) or '-'}\t{','.join(members) or '-'}")


def twilio_instructions(settings) -> list[str]:
    """What the operator sets on the Twilio side once LiveKit SIP is provisioned."""
    base = settings.PUBLIC_BASE_URL.rstrip("/") if settings.PUBLIC_BASE_URL else "<PUBLIC_BASE_URL>"
    host = settings.LIVEKIT_SIP_HOST or "<LIVEKIT_SIP_HOST>"
    return [
        "",
        "Twilio (Console > Phone Numbers > your number > Voice configuration):",
        f"  A call comes in:   Webhook  {base}/twilio/voice  (HTTP POST)",
        f"  Call status changes:        {base}/twilio/status  (HTTP POST)",
        "Nothing else on Twilio: the app's TwiML dials LiveKit itself, as",
        f"  <Dial><Sip username=LIVEKIT_SIP_USERNAME password=…>sip:call_<id>@{host};transport=tcp?X-WT-Call=…&X-WT-Role=…</Sip></Dial>",
        f"so {host} (TCP) and LiveKit SIP's RTP ports must be reachable from Twilio's signalling and media IP ranges.",
        f"LiveKit webhooks: point livekit-server's `webhook.urls` at {base}/livekit/webhook (signed with `webhook.api_key` = LIVEKIT_API_KEY).",
    ]
