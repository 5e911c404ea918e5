"""The composition root: every long-lived object of the bot, built in one place.

``build_services`` is the one function that wires the object graph, for ``qwqbot run``,
``qwqbot digest run`` and the tests; every object gets its collaborators instead of
building them, so what depends on what is visible here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.config import Settings
from qwqbot.digest.runner import DigestRunner
from qwqbot.digest.scheduler import DigestScheduler
from qwqbot.model.client import ModelClient
from qwqbot.policy import Policy
from qwqbot.slack.answerer import Answerer
from qwqbot.slack.calls import Calls
from qwqbot.slack.channels import Channels
from qwqbot.slack.context import ContextBuilder
from qwqbot.slack.delivery import Delivery
from qwqbot.slack.digest_port import SlackDigestPort
from qwqbot.slack.files import FileReader
from qwqbot.slack.identity import BotIdentity
from qwqbot.slack.intake import Intake
from qwqbot.slack.limits import Limits
from qwqbot.slack.live import Streams
from qwqbot.slack.people import People
from qwqbot.store import Store
from qwqbot.store.controls import ControlStore
from qwqbot.store.digests import DigestStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    identity: BotIdentity
    store: Store
    controls: ControlStore
    digests: DigestStore
    client: AsyncWebClient
    people: People
    channels: Channels
    policy: Policy
    #: downloads and reads the files shared in threads (bot token, files:read)
    files: FileReader
    answerer: Answerer
    intake: Intake
    digest_runner: DigestRunner
    scheduler: DigestScheduler
    #: the bot's one APScheduler: digests, heartbeat, retention
    jobs: AsyncIOScheduler
    #: channels with a digest: the intake keeps all their messages
    tracked: set[str]


def build_services(settings: Settings, *, store: Store, client: AsyncWebClient,
                   raw_client: AsyncWebClient, model: ModelClient, identity: BotIdentity,
                   now: Callable[[], datetime] | None = None) -> Services:
    """``client``: the SDK client with its own retries, for reads and uploads;
    ``raw_client``: the same without the SDK's 429 retries, for every post and edit, which
    go through ``Calls`` (see ``slack.app.make_raw_client``). ``now``: the digest
    scheduler's clock (tests)."""
    controls = ControlStore(store)
    digests = DigestStore(store)
    limits = Limits(per_minute={"chat.update": settings.update_budget_per_minute})
    people = People(store, client, limits=limits)
    channels = Channels(client, limits=limits)
    policy = Policy(settings, store, controls)
    calls = Calls(raw_client, limits, give_up_after=settings.slack_patience)
    context = ContextBuilder(settings=settings, store=store, channels=channels, people=people,
                             bot_user_id=identity.user_id, bot_id=identity.bot_id,
                             bot_name=identity.name, policy=policy)
    # Downloads carry the token the Web API client uses, and only to Slack's hosts or the
    # configured SLACK_API_URL host (FileReader's rule).
    files = FileReader(store=store, client=client, token=client.token or "",
                       api_url=settings.slack_api_url)
    answerer = Answerer(
        settings=settings, store=store, client=client, calls=calls, limits=limits,
        streams=Streams(limits, enabled=settings.streaming), model=model, identity=identity,
        delivery=Delivery(calls, client), policy=policy, context=context, files=files)
    tracked = set(digests.tracked())
    port = SlackDigestPort(client=client, store=store, people=people, channels=channels,
                           team_url=identity.url, bot_user_id=identity.user_id)
    runner = DigestRunner(settings=settings, store=store, digests=digests, model=model,
                          slack=port, bot_user_id=identity.user_id,
                          post_empty=policy.digest_post_empty)
    jobs = AsyncIOScheduler(timezone=UTC)
    scheduler = DigestScheduler(settings=settings, runner=runner, digests=digests, jobs=jobs,
                                slack=port, now=now or (lambda: datetime.now(UTC)))
    intake = Intake(store=store, policy=policy, answerer=answerer,
                    bot_user_id=identity.user_id, tracked=tracked)
    return Services(settings=settings, identity=identity, store=store, controls=controls,
                    digests=digests, client=client, people=people, channels=channels,
                    policy=policy, files=files, answerer=answerer, intake=intake,
                    digest_runner=runner, scheduler=scheduler, jobs=jobs, tracked=tracked)
