"""``/qwq QUESTION`` (in the channel, answered in a thread) and ``/qwq private QUESTION``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from qwqbot.slack.answerer import Job
from qwqbot.slack.commands.base import CommandContext, Example, Subcommand, UsageError
from qwqbot.slack.commands.echo import echo, model_reads_all
from qwqbot.slack.delivery import slack_error
from qwqbot.slack.surfaces import EphemeralSurface

log = logging.getLogger(__name__)

#: Slack's answers when the bot may not post in the conversation the command came from.
CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action",
               "cannot_reply_to_message", "ekm_access_denied"}
MAX_QUESTION = 30_000
#: Slack's limit for a section block's text
#: (https://docs.slack.dev/reference/block-kit/blocks/section-block); the message's
#: ``text`` (what notifications show) gets the same room.
ECHO_CHARS = 3000
#: The private echo sits in a context element of the ephemeral answer, beside its words.
PRIVATE_ECHO_CHARS = 1900


@dataclass(frozen=True)
class Ask:
    question: str


def _question(text: str, *, topic: str | None) -> Ask:
    if not text:
        raise UsageError("Tell me what to ask: the question goes after the command.", topic=topic)
    if len(text) > MAX_QUESTION:
        raise UsageError(f"That question is {len(text):,} characters; please keep it under "
                         f"{MAX_QUESTION:,}.", topic=topic)
    return Ask(text)


def parse_public(text: str) -> Ask:
    return _question(text, topic=None)


def parse_private(text: str) -> Ask:
    return _question(text, topic="private")


def _asked_blocks(user_id: str, question: str, *, via: str) -> list[dict[str, object]]:
    # The question arrives escaped (&amp; &lt; &gt;) like any Slack text, so it can be
    # shown as mrkdwn once its broadcasts are inert.
    return [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<@{user_id}> asked {via}"}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": echo(
            question, ECHO_CHARS, rest=model_reads_all(question))}},
    ]


def _asked_text(user_id: str, question: str) -> str:
    """The message's ``text``: notifications show it, so it is as inert as the blocks."""
    prefix = f"<@{user_id}> asked: "
    return prefix + echo(question, ECHO_CHARS - len(prefix), rest=model_reads_all(question))


async def _refused(ctx: CommandContext) -> bool:
    refusal = ctx.services.policy.refusal(ctx.user_id, ctx.channel_id)
    if refusal is not None:
        await ctx.respond(text=f":no_entry: {refusal.message}", response_type="ephemeral")
    return refusal is not None


async def run_public(args: Ask, ctx: CommandContext) -> None:
    s = ctx.services
    if await _refused(ctx):
        return
    try:
        parent = await s.client.chat_postMessage(
            channel=ctx.channel_id, text=_asked_text(ctx.user_id, args.question),
            blocks=_asked_blocks(ctx.user_id, args.question, via="with /qwq"))
    except SlackApiError as exc:
        error = slack_error(exc)
        if error not in CANNOT_POST:
            raise
        log.info("/qwq in %s: cannot post there (%s); answering privately", ctx.channel_id, error)
        await _answer_privately(args, ctx, preface=_cannot_post_note(ctx, error))
        return
    ts = str(parent["ts"])
    # The question is the thread's first message, in the asker's name: follow-ups in the
    # thread then read like any mention thread. It is stored whole: the model reads all of
    # it, however much of it the echo showed.
    s.store.save_message(channel_id=ctx.channel_id, ts=ts, thread_ts=ts, user_id=ctx.user_id,
                         text=args.question)
    answer_id = s.store.claim_answer(channel_id=ctx.channel_id, request_ts=ts, thread_ts=ts,
                                     user_id=ctx.user_id, trigger="command")
    assert answer_id is not None  # a new message's ts cannot be claimed yet
    s.answerer.start(Job(answer_id=answer_id, channel=ctx.channel_id, request_ts=ts,
                         user_id=ctx.user_id, thread_ts=ts,
                         surface=s.answerer.thread_surface(ctx.channel_id, ts, ctx.user_id)))


async def run_private(args: Ask, ctx: CommandContext) -> None:
    if not await _refused(ctx):
        await _answer_privately(args, ctx, preface=None)


async def _answer_privately(args: Ask, ctx: CommandContext, *, preface: str | None) -> None:
    s = ctx.services
    prefix = "_Only you can see this._ You asked: "
    asked = prefix + echo(args.question, PRIVATE_ECHO_CHARS - len(prefix),
                          rest=model_reads_all(args.question))
    surface = EphemeralSurface(ctx.response_url,
                               preface=f"{preface}\n{asked}" if preface else asked)
    answer_id = s.store.claim_answer(
        channel_id=ctx.channel_id, request_ts=f"cmd.{ctx.trigger_id}", thread_ts=None,
        user_id=ctx.user_id, trigger="private", question=args.question)
    if answer_id is None:
        return  # the same command delivered twice
    s.answerer.start(Job(answer_id=answer_id, channel=ctx.channel_id,
                         request_ts=f"cmd.{ctx.trigger_id}", user_id=ctx.user_id,
                         surface=surface, question=args.question))


def _cannot_post_note(ctx: CommandContext, error: str) -> str:
    if ctx.channel_name == "directmessage":
        return (":lock: I can't post in a direct message between other people, so I'm "
                "answering you here, privately. To ask where others can see, mention me in a "
                "channel I'm in or send me a direct message.")
    return (f":lock: I can't post in this conversation ({error}), so I'm answering you here, "
            "privately. To use me here, invite me: type `/invite @qwqbot` in this channel.")


ASK = Subcommand(
    name="ask", parse=parse_public, run=run_public, listed=False,
    examples=(Example("/qwq QUESTION", "ask in this channel; the answer comes in a thread",
                      "/qwq Why is the sky blue?"),))
PRIVATE = Subcommand(
    name="private", parse=parse_private, run=run_private,
    examples=(Example("/qwq private QUESTION", "only you see the question and the answer",
                      "/qwq private Is this email too blunt? ..."),))
