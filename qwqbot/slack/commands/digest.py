"""``/qwq digest daily|weekly|off|now|list``: scheduled channel digests, managed from the
channel itself. Every reply is ephemeral; the digest is only ever posted into the channel
the command came from. Anyone here may set a digest or ask for one now; only whoever set a
schedule, the channel's creator or the bot's admins may turn it off or replace it (see
authority.py): the others are told who can."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qwqbot.digest.schedule import (
    ScheduleError,
    describe,
    format_local,
    next_fire,
    parse_schedule,
)
from qwqbot.digest.scheduler import schedule_of
from qwqbot.slack.commands.authority import stewards
from qwqbot.slack.commands.base import CommandContext, Example, Subcommand, UsageError

log = logging.getLogger(__name__)
ACTIONS = ("daily", "weekly", "off", "now", "list")


@dataclass(frozen=True)
class DigestArgs:
    action: str
    words: tuple[str, ...] = ()


def parse(text: str) -> DigestArgs:
    words = text.split()
    if not words:
        raise UsageError("Say what to do with digests.", topic="digest")
    action = words[0].lower()
    if action not in ACTIONS:
        raise UsageError(f"`{words[0]}` is not a digest action: use daily, weekly, off, now or "
                         "list.", topic="digest")
    if action in ("daily", "weekly"):
        try:  # validated now, so a bad time is refused within the ack
            parse_schedule(words, default_tz="UTC")
        except ScheduleError as exc:
            raise UsageError(exc.problem, topic="digest") from None
    elif len(words) > 1:
        raise UsageError(f"`digest {action}` takes nothing more.", topic="digest")
    return DigestArgs(action, tuple(words))


async def run(args: DigestArgs, ctx: CommandContext) -> None:
    handler = {"daily": _set, "weekly": _set, "off": _off, "now": _now, "list": _list}
    await handler[args.action](args, ctx)


async def _reply(ctx: CommandContext, text: str) -> None:
    await ctx.respond(text=text, response_type="ephemeral")


async def _user_tz(ctx: CommandContext) -> str | None:
    tz: str | None = await ctx.services.people.timezone(ctx.user_id)
    return tz


async def _can_read(ctx: CommandContext) -> bool:
    # Membership changes with /invite: read it fresh.
    channel = await ctx.services.channels.info(ctx.channel_id, fresh=True) or {}
    return bool(channel.get("is_member") or channel.get("is_im"))


async def _set(args: DigestArgs, ctx: CommandContext) -> None:
    s = ctx.services
    if not await _can_read(ctx):
        await _reply(ctx, ":lock: I'm not in this channel, so I can't read it or post a digest "
                     "here. Invite me first: `/invite @qwqbot`, then set the digest again.")
        return
    user_tz = await _user_tz(ctx)
    channel_tz = s.policy.digest_tz(ctx.channel_id)
    schedule = parse_schedule(list(args.words), default_tz=channel_tz or user_tz)
    # One schedule of each kind per channel: a new one of the same kind replaces it.
    replaced = [r for r in s.digests.schedules(ctx.channel_id) if r["kind"] == schedule.kind]
    if not await _may_change(ctx, replaced, doing=f"replace this channel's {schedule.kind} "
                             "digest"):
        return
    schedule_id = s.digests.set_schedule(
        channel_id=ctx.channel_id, kind=schedule.kind, day=schedule.day, hour=schedule.hour,
        minute=schedule.minute, tz=schedule.tz, created_by=ctx.user_id)
    s.tracked.add(ctx.channel_id)
    row = s.digests.schedule(schedule_id)
    assert row is not None
    s.scheduler.add(row)
    upcoming = next_fire(schedule, datetime.now(UTC))
    zone_note = " (your Slack profile has no time zone, so UTC)" if schedule.assumed_utc else ""
    await _reply(ctx, f":spiral_calendar_pad: Done: a digest of this channel {describe(schedule)}"
                 f"{zone_note}. The next one comes {format_local(upcoming, user_tz)}.\n"
                 "It covers what was said since the previous digest, thread replies included; "
                 "I keep this channel's messages from now on to write it.")


async def _may_change(ctx: CommandContext, rows: list[dict[str, Any]], *, doing: str) -> bool:
    """Whether the person may change these schedules; if not, they are told who may."""
    setters = [str(r["created_by"]) for r in rows]
    if set(setters) <= {ctx.user_id}:
        return True  # nothing to change, or only what they set themselves
    who = await stewards(ctx)
    if who.allow(setters):
        return True
    set_by = "; ".join(f"the {r['kind']} digest was set by <@{r['created_by']}>" for r in rows)
    await _reply(ctx, f":lock: Only {who.who(setters)} can {doing}: {set_by}. "
                 "`/qwq digest list` shows the schedules.")
    return False


async def _off(args: DigestArgs, ctx: CommandContext) -> None:
    s = ctx.services
    if not await _may_change(ctx, s.digests.schedules(ctx.channel_id),
                             doing="turn this channel's digests off"):
        return
    removed = s.digests.remove_schedules(ctx.channel_id)
    s.scheduler.remove(removed)
    s.tracked.discard(ctx.channel_id)
    if not removed:
        await _reply(ctx, "This channel has no digest to turn off.")
        return
    await _reply(ctx, "Digests for this channel are off. I no longer keep its messages (except "
                 "in threads I answer in).")


async def _now(args: DigestArgs, ctx: CommandContext) -> None:
    s = ctx.services
    if not await _can_read(ctx):
        await _reply(ctx, ":lock: I'm not in this channel. Invite me first: `/invite @qwqbot`.")
        return
    end = time.time()
    start = s.digests.last_posted_end(ctx.channel_id) or end - 24 * 3600
    tz = await _user_tz(ctx) or "UTC"
    await _reply(ctx, f":hourglass_flowing_sand: Writing a digest of this channel since "
                 f"{format_local(datetime.fromtimestamp(start, UTC), tz)}; it will be posted "
                 "here in a minute or two.")
    name = await s.channels.name(ctx.channel_id)

    async def work() -> None:
        outcome = await s.digest_runner.run(
            channel_id=ctx.channel_id, channel_name=name, schedule_id=None,
            period_key=f"now:{end:.3f}", start=start, end=end, tz=tz,
            title=f"Digest of #{name}")
        if outcome.status == "empty":
            await _reply(ctx, "No messages in this channel since then: no digest to post.")
        elif outcome.status == "failed":
            await _reply(ctx, f":warning: The digest could not be made: {outcome.error} "
                         "Try again later with `/qwq digest now`.")

    s.scheduler.spawn(work())


async def _list(args: DigestArgs, ctx: CommandContext) -> None:
    s = ctx.services
    rows = s.digests.schedules(ctx.channel_id)
    if not rows:
        await _reply(ctx, "This channel has no digest. Set one with `/qwq digest daily 09:00`.")
        return
    tz = await _user_tz(ctx)
    lines = ["*Digests of this channel*"]
    for row in rows:
        schedule = schedule_of(row)
        set_on = format_local(datetime.fromtimestamp(row["created_at"], UTC), tz)
        line = f"• {describe(schedule)}, set by <@{row['created_by']}> {set_on}"
        upcoming = s.scheduler.next_run(row["id"])
        if upcoming is not None:
            line += f"\n    next: {format_local(upcoming, tz)}"
        last = s.digests.last_run(row["id"])
        if last is not None:
            when = format_local(datetime.fromtimestamp(last["period_end"], UTC), tz)
            status = _run_status(last)
            if last["status"] == "failed" and last["next_retry_at"]:
                retry = format_local(datetime.fromtimestamp(last["next_retry_at"], UTC), tz)
                status += f" — retrying {retry}"
            line += f"\n    last run: {when}, {status}"
        lines.append(line)
    await _reply(ctx, "\n".join(lines))


def _run_status(run: dict[str, object]) -> str:
    if run["status"] == "posted":
        return f"posted ({run['messages'] or 0:,} messages)"
    if run["status"] == "empty":
        return "no messages, nothing posted"
    if run["status"] == "running":
        return "being written now"
    return f"failed: {run['error_message']}"


DIGEST = Subcommand(
    name="digest", parse=parse, run=run,
    examples=(
        Example("/qwq digest daily HH:MM [TZ]", "a digest of this channel every day",
                "/qwq digest daily 09:00"),
        Example("/qwq digest weekly DAY HH:MM [TZ]", "every week instead",
                "/qwq digest weekly mon 09:30 Europe/Berlin"),
        Example("/qwq digest now", "a digest since the last one, right away", "/qwq digest now"),
        Example("/qwq digest list", "this channel's digests, who set them, the last run",
                "/qwq digest list"),
        Example("/qwq digest off", "stop this channel's digests", "/qwq digest off"),
    ))
