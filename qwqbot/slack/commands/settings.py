"""``/qwq settings``: this channel's settings. Anyone who can type in the channel may
change most of them (like its topic); the bot's admins may too. The prompt is different:
it shapes everyone's answers here, unseen, so only the channel's creator and the bot's
admins may change it (see authority.py), the channel is told each time, and every answer
it shaped says so. Documented in the README."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from qwqbot.digest.schedule import ScheduleError, parse_zone
from qwqbot.slack.commands.authority import stewards
from qwqbot.slack.commands.base import CommandContext, Example, Subcommand, UsageError
from qwqbot.slack.commands.echo import echo
from qwqbot.slack.delivery import slack_error
from qwqbot.slack.inert import inert

ON = {"on": 1, "yes": 1, "true": 1, "off": 0, "no": 0, "false": 0}
SHOW = {"show": 1, "on": 1, "hide": 0, "off": 0}
MAX_PROMPT = 2000
#: How much of a new prompt the channel's notice shows
NOTICE_CHARS = 500


@dataclass(frozen=True)
class SettingsArgs:
    column: str | None = None  # None: show the settings
    value: object = None
    label: str = ""


def parse(text: str) -> SettingsArgs:
    words = text.split(maxsplit=1)
    if not words:
        return SettingsArgs()
    name, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    if name == "mention":
        if rest.lower() not in ON:
            raise UsageError("Say `on` (answer thread follow-ups only when mentioned) or `off`.",
                             topic="settings")
        return SettingsArgs("require_mention", ON[rest.lower()], "mention required")
    if name == "reasoning":
        if rest.lower() not in SHOW:
            raise UsageError("Say `show` or `hide`.", topic="settings")
        return SettingsArgs("show_reasoning", SHOW[rest.lower()], "reasoning shown")
    if name == "prompt":
        if not rest:
            raise UsageError("Give the extra instructions, or `clear`.", topic="settings")
        if len(rest) > MAX_PROMPT:
            raise UsageError(f"Keep the extra instructions under {MAX_PROMPT:,} characters.",
                             topic="settings")
        return SettingsArgs("system_extra", None if rest.lower() == "clear" else rest,
                            "extra instructions")
    if name == "digest-tz":
        try:
            return SettingsArgs("digest_tz", parse_zone(rest) if rest.lower() != "clear" else None,
                                "digest time zone")
        except ScheduleError as exc:
            raise UsageError(exc.problem, topic="settings") from None
    if name == "digest-empty":
        if rest.lower() not in ON:
            raise UsageError("Say `on` (post a note for quiet periods) or `off`.",
                             topic="settings")
        return SettingsArgs("digest_post_empty", ON[rest.lower()], "digest of quiet periods")
    raise UsageError(f"`{words[0]}` is not a setting: use mention, reasoning, prompt, digest-tz "
                     "or digest-empty.", topic="settings")


def describe(ctx: CommandContext) -> str:
    policy = ctx.services.policy
    channel = ctx.channel_id
    extra = policy.system_extra(channel)
    author = ctx.services.controls.prompt_author(channel)
    by = f" (set by <@{author}>)" if author else ""
    prompt = f"“{inert(extra)}”{by}" if extra else "none"
    mention = ("required for thread follow-ups" if policy.require_mention(channel)
               else "not needed in threads the bot is in")
    lines = [
        "*Settings of this channel*",
        f"• mention: {mention}",
        f"• reasoning: {'shown' if policy.show_reasoning(channel) else 'hidden'}",
        f"• prompt: {prompt}",
        f"• digest-tz: {policy.digest_tz(channel) or 'the time zone of whoever sets a digest'}",
        f"• digest-empty: {'on' if policy.digest_post_empty(channel) else 'off'}",
    ]
    return "\n".join(lines)


async def run(args: SettingsArgs, ctx: CommandContext) -> None:
    if args.column == "system_extra":
        await _set_prompt(args.value if isinstance(args.value, str) else None, ctx)
        return
    if args.column is not None:
        ctx.services.controls.set_channel_setting(
            ctx.channel_id, args.column, args.value, by=ctx.user_id)
    await ctx.respond(text=("Saved. " if args.column else "") + describe(ctx),
                      response_type="ephemeral")


async def _set_prompt(text: str | None, ctx: CommandContext) -> None:
    s = ctx.services
    who = await stewards(ctx)
    if not who.allow():
        await ctx.respond(text=f":lock: Only {who.who()} can change this channel's instructions "
                          "for qwqbot: they shape everyone's answers here.",
                          response_type="ephemeral")
        return
    if (text or "") == s.policy.system_extra(ctx.channel_id):
        await ctx.respond(text="Nothing to change. " + describe(ctx), response_type="ephemeral")
        return
    if text:
        shown = echo(text, NOTICE_CHARS, rest="`/qwq settings` shows all of it")
        notice = (f"<@{ctx.user_id}> set this channel's instructions for qwqbot: “{shown}”\n"
                  "Every answer they shape says so.")
    else:
        notice = f"<@{ctx.user_id}> cleared this channel's instructions for qwqbot."
    try:
        # Told first: instructions that shape everyone's answers never change unseen.
        await s.client.chat_postMessage(channel=ctx.channel_id, text=notice)
    except SlackApiError as exc:
        await ctx.respond(text=f":lock: I couldn't tell this channel (Slack: {slack_error(exc)}), "
                          "so its instructions are unchanged: they only change where everyone "
                          "can see that they did. Invite me first: `/invite @qwqbot`.",
                          response_type="ephemeral")
        return
    await s.people.names([ctx.user_id])  # the answers they shape name this person
    s.controls.set_prompt(ctx.channel_id, text, by=ctx.user_id)
    await ctx.respond(text="Saved, and the channel was told. " + describe(ctx),
                      response_type="ephemeral")


SETTINGS = Subcommand(name="settings", parse=parse, run=run, examples=(
    Example("/qwq settings", "this channel's settings", "/qwq settings"),
    Example("/qwq settings mention on|off", "answer thread follow-ups only when mentioned",
            "/qwq settings mention on"),
    Example("/qwq settings reasoning show|hide", "show or hide the reasoning attachment",
            "/qwq settings reasoning hide"),
    Example("/qwq settings prompt TEXT|clear",
            "(the channel's creator, admins) extra instructions for the model here",
            "/qwq settings prompt Answer in German."),
    Example("/qwq settings digest-tz ZONE", "default time zone for this channel's digests",
            "/qwq settings digest-tz Europe/Berlin"),
    Example("/qwq settings digest-empty on|off", "post a note when a period was quiet",
            "/qwq settings digest-empty on"),
))
