"""Slack's AI app split view ("assistant view"): the bot in Slack's side panel, where the
workspace's plan has it, working exactly like a DM.

Slack opens each conversation there as a thread in the user's DM with the app:
``assistant_thread_started`` names the thread and the channel the user is looking at,
``assistant_thread_context_changed`` follows them as they move around Slack, and what they
type arrives as ``message.im`` events in the thread
(https://docs.slack.dev/reference/events/assistant_thread_started,
https://docs.slack.dev/tools/bolt-python/concepts/ai-apps). Bolt's ``AsyncAssistant``
middleware routes those events; here a thread gets its suggested prompts and, from its
first question, its title, and every message goes to the same Intake as any DM, so thread
memory, quotas, limits and usage are those of a DM. Without the split view (free plans)
none of this runs and the DM works as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import (
    AsyncAssistantThreadContextStore,
)
from slack_bolt.context.save_thread_context.async_save_thread_context import (
    AsyncSaveThreadContext,
)
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import (
    AsyncSetSuggestedPrompts,
)
from slack_bolt.context.set_title.async_set_title import AsyncSetTitle
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import is_other_message_sub_event_in_assistant_thread
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError

from qwqbot.conversation import to_plain
from qwqbot.slack.panel_summary import answer_summary_request, summary_message
from qwqbot.slack.services import Services
from qwqbot.slacktext import mentioned_ids
from qwqbot.store import Store

log = logging.getLogger(__name__)


# -- what the panel offers (every user-facing text of the split view) -----------------

@dataclass(frozen=True, slots=True)
class SuggestedPrompt:
    title: str    # the button
    message: str  # what the user "says" when they press it

    def as_slack(self) -> dict[str, str]:
        return {"title": self.title, "message": self.message}


PROMPTS_TITLE = "Try asking"
PROMPTS: tuple[SuggestedPrompt, ...] = (
    SuggestedPrompt(
        "Explain a concept step by step",
        "Explain step by step how public-key encryption lets two strangers agree on a secret "
        "over an open line, assuming only school maths."),
    SuggestedPrompt(
        "Check my reasoning",
        "I'd like you to check my reasoning. Ask me for the problem and my solution, then go "
        "through it step by step and point out any step that doesn't follow."),
    SuggestedPrompt(
        "Solve a puzzle",
        "Solve this and show your reasoning: a bat and a ball cost $1.10 together, and the "
        "bat costs $1.00 more than the ball. How much does the ball cost?"),
)
#: setSuggestedPrompts takes up to four prompts
#: (https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts)
MAX_PROMPTS = 4
#: a thread's title is a line in the panel's history: long enough to recognise the question
TITLE_CHARS = 60


def summary_prompt(channel_name: str) -> SuggestedPrompt:
    """Pressed, it is answered by a digest of that channel (``slack/panel_summary.py``)."""
    return SuggestedPrompt(f"Summarise #{channel_name}", summary_message(channel_name))


def suggested_prompts(summary_of: str | None) -> list[SuggestedPrompt]:
    """Pure: the thread's prompts, led by a summary of the channel being viewed if any."""
    lead = [summary_prompt(summary_of)] if summary_of else []
    return (lead + list(PROMPTS))[:MAX_PROMPTS]


def thread_title(text: str, names: Mapping[str, str], *, bot_user_id: str,
                 bot_name: str) -> str:
    """Pure: a thread's title from its first question: plain text on one line, people's
    mentions as their names, at most ``TITLE_CHARS`` (cut between words)."""
    plain = " ".join(to_plain(text, names, bot_user_id=bot_user_id, bot_name=bot_name).split())
    if len(plain) <= TITLE_CHARS:
        return plain
    cut = plain[:TITLE_CHARS - 1]
    space = cut.rfind(" ")
    if space >= TITLE_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


# -- the thread context, kept in the store ------------------------------------------------

class StoredThreadContexts(AsyncAssistantThreadContextStore):
    """Bolt's thread-context store, in SQLite. Bolt's default keeps the context in the
    metadata of the bot's first reply (``DefaultAsyncAssistantThreadContextStore``): a
    conversations.replies per read, a chat.update per change that rewrites the reply from
    a copy read just before (racing the answer pipeline's own edits), and no place to keep
    a context that changes before the first answer."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        self.store.save_assistant_thread(
            channel_id, thread_ts, context_channel_id=context.get("channel_id"),
            context_team_id=context.get("team_id"),
            context_enterprise_id=context.get("enterprise_id"))

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        row = self.store.assistant_thread(channel_id, thread_ts)
        if row is None or not row["context_channel_id"]:
            return None
        return AssistantThreadContext({"channel_id": row["context_channel_id"],
                                       "team_id": row["context_team_id"],
                                       "enterprise_id": row["context_enterprise_id"]})


class DmAssistant(AsyncAssistant):
    """Bolt's ``AsyncAssistant``, except that edits and deletions in DM threads go on to the
    message listener. Bolt acks and drops every IM ``message_changed``/``message_deleted``
    whose message is in a thread (``is_other_message_sub_event_in_assistant_thread``), in
    any DM thread, so an edited question would stay unedited in the bot's memory."""

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]],
                            ) -> BoltResponse | None:
        if is_other_message_sub_event_in_assistant_thread(req.body):
            return await next()
        return await super().async_process(req=req, resp=resp, next=next)


# -- the listeners --------------------------------------------------------------------------

def register(app: AsyncApp, services: Services) -> None:
    store, identity = services.store, services.identity
    assistant = DmAssistant(thread_context_store=StoredThreadContexts(store))

    async def summary_of(channel_id: str | None) -> str | None:
        """The name of the viewed channel when a summary of it can be offered: a channel
        (not a DM) with a digest, or at least one the bot is in."""
        if not channel_id:
            return None
        info = await services.channels.info(channel_id)
        if not info or info.get("is_im") or info.get("is_mpim"):
            return None  # not visible to the bot (conversations.info refused), or a DM
        if not (services.digests.schedules(channel_id) or info.get("is_member")):
            return None
        return str(info.get("name") or channel_id)

    async def offer(set_suggested_prompts: AsyncSetSuggestedPrompts,
                    channel_id: str | None, thread: Mapping[str, Any]) -> None:
        prompts = suggested_prompts(await summary_of(channel_id))
        try:
            await set_suggested_prompts(prompts=[p.as_slack() for p in prompts],
                                        title=PROMPTS_TITLE)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("setSuggestedPrompts in %s/%s failed: %s", thread.get("channel_id"),
                        thread.get("thread_ts"), _error_name(exc))

    @assistant.thread_started
    async def on_thread_started(payload: dict[str, Any],
                                set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
        thread = payload["assistant_thread"]
        channel, thread_ts = str(thread["channel_id"]), str(thread["thread_ts"])
        context = thread.get("context") or {}
        store.save_assistant_thread(
            channel, thread_ts, user_id=thread.get("user_id"),
            context_channel_id=context.get("channel_id"),
            context_team_id=context.get("team_id"),
            context_enterprise_id=context.get("enterprise_id"))
        # The bot is in this thread from its start: there is nothing in it to read back
        # from Slack when the first question comes (its root is Slack's "New chat" marker).
        store.join_thread(channel, thread_ts, backfilled=True)
        await offer(set_suggested_prompts, context.get("channel_id"), thread)

    @assistant.thread_context_changed
    async def on_context_changed(payload: dict[str, Any],
                                 save_thread_context: AsyncSaveThreadContext,
                                 set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
        thread = payload["assistant_thread"]
        channel, thread_ts = str(thread["channel_id"]), str(thread["thread_ts"])
        context = thread.get("context") or {}
        before = store.assistant_thread(channel, thread_ts)
        await save_thread_context(context)
        if before is not None and before["titled_at"] is not None:
            return  # the conversation has begun: its prompts are behind it
        old = await summary_of(before["context_channel_id"] if before else None)
        new = await summary_of(context.get("channel_id"))
        if new != old:  # "Summarise #general" while looking at #random would mislead
            await offer(set_suggested_prompts, context.get("channel_id"), thread)

    @assistant.user_message
    async def on_user_message(event: dict[str, Any], set_title: AsyncSetTitle) -> None:
        # Every message of a DM thread comes here (Bolt's middleware takes them from the
        # message listener), assistant thread or not: the Intake treats it as any DM, except
        # the "Summarise #channel" prompt, which a digest of that channel answers.
        if not await answer_summary_request(services, event):
            services.intake.on_event(event)
        text = str(event.get("text") or "")
        channel, thread_ts = str(event.get("channel")), str(event.get("thread_ts"))
        if not thread_title(text, {}, bot_user_id=identity.user_id, bot_name=identity.name):
            return  # nothing to name it by (a file alone): the next question will
        if not store.claim_assistant_title(channel, thread_ts):
            return  # not an assistant thread, or named by its first question already
        names = await services.people.names(mentioned_ids([text]))
        title = thread_title(text, names, bot_user_id=identity.user_id, bot_name=identity.name)
        try:
            await set_title(title)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("setTitle in %s/%s failed: %s", channel, thread_ts, _error_name(exc))

    app.assistant(assistant)


def _error_name(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return type(exc).__name__
