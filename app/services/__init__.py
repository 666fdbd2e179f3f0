"""The application's services, wired once per app by `build_services`.

Flask code reaches them through `app.current.services()`; services never import Flask.
Gateways can be injected (tests pass a LiveKit gateway pointed at the local Twirp double and a
summary provider double), otherwise they are built from configuration.
"""
from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings, parse_rate
from app.db import Database
from app.event_dispatcher import Dispatcher
from app.gateways.livekit import LiveKitGateway
from app.gateways.twilio import TwilioGateway
from app.ratelimit import RateLimiter
from app.services.agent_departures import AgentDepartures
from app.services.agents import AgentService, SignInLimits
from app.services.arrivals import Arrivals
from app.services.calls import CallService
from app.services.drafts import DraftRefresher
from app.services.floor import FloorService
from app.services.livekit_events import LiveKitEvents
from app.services.notifications import Notifications
from app.services.phone_legs import PhoneLegs
from app.services.phone_transfers import PhoneTransfers
from app.services.recordings import RecordingService
from app.services.routing import drain_queue
from app.services.stats import StatsService
from app.services.streams import CustomerStreamRegistry, StreamRegistry
from app.services.summaries import SummaryStore
from app.services.supervision import SupervisionService
from app.services.teams import TeamService
from app.services.telephony import TelephonyService
from app.services.transfers import TransferService
from app.summaries.base import SummaryProvider
from app.summaries.summarizer import Summarizer, build_provider


@dataclass
class Services:
    settings: Settings
    db: Database
    livekit: LiveKitGateway
    dispatcher: Dispatcher
    limiter: RateLimiter
    agents: AgentService
    summaries: SummaryStore
    drafts: DraftRefresher
    calls: CallService
    transfers: TransferService
    twilio: TwilioGateway | None  # None: TWILIO_* unset, phone features answer 503
    phone_legs: PhoneLegs
    phone_transfers: PhoneTransfers
    telephony: TelephonyService
    livekit_events: LiveKitEvents
    streams: StreamRegistry
    customer_streams: CustomerStreamRegistry
    notifications: Notifications
    arrivals: Arrivals
    recordings: RecordingService
    teams: TeamService
    supervision: SupervisionService
    floor: FloorService
    stats: StatsService

    def drain_queue(self) -> list[tuple[str, str]]:
        # Not for views: the service method that frees an agent drains the queue itself. Tests
        # use this to route waiting calls at a moment of their choosing.
        return drain_queue(self.db)

    def close(self) -> None:
        self.dispatcher.stop()
        self.livekit.close()
        self.db.dispose()


def build_services(
    settings: Settings,
    *,
    livekit: LiveKitGateway | None = None,
    summary_provider: SummaryProvider | None = None,
    twilio_client=None,
) -> Services:
    # Telephony settings first: a malformed one stops start-up before anything is opened.
    twilio = TwilioGateway.from_config(settings, twilio_client) if settings.telephony_configured else None
    phone_legs = PhoneLegs.from_config(settings, twilio)
    db = Database(settings.DATABASE_URL, connect_timeout_s=settings.DB_CONNECT_TIMEOUT_S, exchange_timeout_s=settings.DB_TIMEOUT_S)
    livekit = livekit or LiveKitGateway.from_config(settings)
    summarizer = Summarizer(summary_provider or build_provider(settings))
    summaries = SummaryStore(
        db, summarizer, store_raw=settings.STORE_RAW_CONTEXT, budget_s=settings.TRANSFER_SUMMARY_BUDGET_S, draft_debounce_s=settings.DRAFT_DEBOUNCE_S
    )
    limiter = RateLimiter(db)
    calls = CallService(db, livekit, summaries, phone_legs, limiter=limiter, create_call_rate=parse_rate(settings.CREATE_CALL_RATE_LIMIT))
    phone_transfers = PhoneTransfers(db, livekit, summaries, settings, phone_legs, calls)
    services = Services(
        settings=settings,
        db=db,
        livekit=livekit,
        dispatcher=Dispatcher(db, settings.EVENT_POLL_INTERVAL_S, settings.GUNICORN_THREADS - settings.SSE_THREAD_RESERVE),
        limiter=limiter,
        agents=AgentService(
            db, settings.SESSION_LIFETIME_S, settings.PASSWORD_HASH_METHOD, settings.LOGIN_CONCURRENCY,
            limiter=limiter,
            sign_in_limits=SignInLimits(parse_rate(settings.LOGIN_RATE_LIMIT), parse_rate(settings.LOGIN_AGENT_RATE_LIMIT)),
        ),
        summaries=summaries,
        drafts=DraftRefresher(db, summaries, debounce_s=settings.DRAFT_DEBOUNCE_S, budget_s=settings.LLM_TIMEOUT_S, redraft_s=settings.SUMMARY_REDRAFT_S),
        calls=calls,
        transfers=TransferService(db, livekit, summaries, settings, phone_transfers, limiter),
        twilio=twilio,
        phone_legs=phone_legs,
        phone_transfers=phone_transfers,
        telephony=TelephonyService(db, livekit, summaries, calls, phone_legs, settings),
        livekit_events=LiveKitEvents(db, livekit, calls, phone_legs, settings, AgentDepartures(db, livekit, calls, settings.AGENT_RECONNECT_GRACE_S)),
        streams=StreamRegistry(db, settings.SSE_STREAMS_PER_SESSION, settings.SSE_STREAMS_PER_AGENT, settings.SESSION_LIFETIME_S),
        customer_streams=CustomerStreamRegistry(db, settings.SSE_STREAMS_PER_CALL, settings.SESSION_LIFETIME_S),
        notifications=Notifications(db, settings.NOTIFICATIONS_PAGE_SIZE),
        arrivals=Arrivals(db, livekit, calls, phone_legs, settings),
        recordings=RecordingService(db, twilio, calls),
        teams=TeamService(db),
        supervision=SupervisionService(db, livekit),
        floor=FloorService(db),
        stats=StatsService(db),
    )
    return services
