""""Summarise #channel" in the AI app split view: a digest of the channel the user is
looking at, written into the panel's thread.

The prompt is offered when the user views a channel the bot is in (``listeners/assistant``);
pressing it sends the prompt's text as the user's message. That message is answered by the
digest machinery rather than the plain model: the channel's last day of messages (from the
store, or Slack history where the bot was not keeping them) summarised the way a scheduled
digest is, with the reasoning in its collapsed attachment. Only a member of the channel
gets its summary; the usage counts against the asker, and their quota applies.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from qwqbot.slack.answer_blocks import answer_payloads
from qwqbot.slack.calls import Undeliverable
from qwqbot.slack.render import reasoning_attachment, to_mrkdwn
from qwqbot.slack.services import Services
from qwqbot.slack.surfaces import View

log = logging.getLogger(__name__)
PERIOD = 24 * 3600.0


def summary_message(channel_name: str) -> str:
    """What the user "says" when they press the prompt (one place for the wording)."""
    return (f"Summarise the recent conversation in #{channel_name}, the way a channel digest "
            "would: the main topics, what was decided, and the questions still open.")


async def answer_summary_request(services: Services, event: dict[str, Any]) -> bool:
    """True when ``event`` asks for the summary of the thread's viewed channel and is being
    answered that way; False to let the Intake answer it as any message."""
    channel, thread_ts = str(event.get("channel") or ""), str(event.get("thread_ts") or "")
    user = str(event.get("user") or "")
    thread = services.store.assistant_thread(channel, thread_ts)
    viewed = thread["context_channel_id"] if thread else None
    if not viewed or not user or event.get("subtype"):
        return False
    name = await services.channels.name(viewed)
    if str(event.get("text") or "").strip() != summary_message(name):
        return False
    if user not in await services.channels.members(viewed):
        return False  # never a summary of a channel the asker can't read
    refusal = services.policy.refusal(user, channel)
    if refusal is not None:
        await services.answerer.notify(channel, user, refusal.message, thread_ts=thread_ts)
        return True
    services.store.save_message(channel_id=channel, ts=str(event["ts"]), thread_ts=thread_ts,
                                user_id=user, text=str(event.get("text") or ""))
    services.answerer.spawn(_summarise(services, channel, thread_ts, user, viewed, name))
    return True


async def _summarise(services: Services, channel: str, thread_ts: str, user: str,
                     viewed: str, name: str) -> None:
    surface = services.answerer.thread_surface(channel, thread_ts, user)
    started = time.monotonic()
    with contextlib.suppress(Undeliverable):  # no sign of life now; the summary still comes
        await surface.begin(View("thinking", 0.0))
    end = time.time()
    tz = await services.people.timezone(user) or "UTC"
    outcome = await services.digest_runner.run(
        channel_id=viewed, channel_name=name, schedule_id=None, period_key=f"panel:{end:.3f}",
        start=end - PERIOD, end=end, tz=tz, title=f"Summary of #{name}", dry_run=True,
        asker=user)
    if outcome.status == "dry_run":
        markdown = outcome.markdown
    elif outcome.status == "empty":
        markdown = f"Nothing was said in #{name} in the last 24 hours."
    else:
        markdown = (f":warning: I couldn't summarise #{name}: {outcome.error} Please try "
                    "again in a minute.")
    # The conversation is the panel's thread: the people of the summarised channel are
    # named, never notified (only the asker, and whoever the thread itself mentions).
    audience = services.answerer.audience(channel, thread_ts, user)
    payloads = answer_payloads(markdown, inert=audience)
    if outcome.reasoning:
        payloads[0]["attachments"] = [reasoning_attachment(
            outcome.reasoning, tokens=None, seconds=time.monotonic() - started, inert=audience,
            omitted_hint="the bot keeps the full text").payload]
    try:
        sent = await surface.deliver(payloads, plain_text=audience(to_mrkdwn(markdown)))
    except Undeliverable as exc:
        log.error("could not post the summary of %s in %s: %s", viewed, channel, exc.error)
        return
    if sent:  # follow-up questions in the thread read the summary
        services.store.save_message(channel_id=channel, ts=sent[0], thread_ts=thread_ts,
                                    user_id=services.identity.user_id, text=markdown,
                                    is_bot=True, bot_id=services.identity.bot_id)
