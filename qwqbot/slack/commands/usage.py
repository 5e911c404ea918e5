"""``/qwq usage``: your usage and this channel's; admins also see the workspace's."""

from __future__ import annotations

import time

from qwqbot.slack.commands.base import CommandContext, Example, Subcommand, UsageError
from qwqbot.slack.usage_text import usage_text
from qwqbot.store.usage import feedback_counts, prompt_drift, tokens_today, top_users, windows


def parse(text: str) -> None:
    if text:
        raise UsageError("`usage` takes nothing more.", topic="usage")


async def run(args: None, ctx: CommandContext) -> None:
    s = ctx.services
    store, policy = s.store, s.policy
    now = time.time()
    limit = policy.daily_limit(ctx.user_id)
    quota = (tokens_today(store, ctx.user_id, now=now), limit) if limit > 0 else None
    admin = policy.is_admin(ctx.user_id)
    month = now - 30 * 86400
    text = usage_text(
        own=windows(store, now=now, user_id=ctx.user_id),
        channel=windows(store, now=now, channel_id=ctx.channel_id),
        channel_name=await s.channels.name(ctx.channel_id),
        workspace=windows(store, now=now) if admin else None,
        top=top_users(store, since=month) if admin else None,
        feedback=feedback_counts(store, since=month) if admin else None,
        quota=quota,
        # For operators: the bot's own prompt counts against the server's, over the last week.
        drift=prompt_drift(store, since=now - 7 * 86400) if admin else None)
    await ctx.respond(text=text, response_type="ephemeral")


USAGE = Subcommand(name="usage", parse=parse, run=run, examples=(
    Example("/qwq usage", "tokens and answers: yours and this channel's (admins: everyone's)",
            "/qwq usage"),))
