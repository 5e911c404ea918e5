"""``/qwq admin ...``: channel access and quotas, for the bot's admins (QWQBOT_ADMINS)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qwqbot.formatting import format_tokens
from qwqbot.slack.commands.base import CommandContext, Example, Subcommand, UsageError

_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(\|[^>]*)?>$")
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(\|[^>]*)?>$")


@dataclass(frozen=True)
class AdminArgs:
    action: str  # allow | deny | clear | quota | list
    target: str = ""  # channel id, "here", or user id
    tokens: int | None = None


def _channel(word: str) -> str:
    if word.lower() in ("here", "this"):
        return "here"
    match = _CHANNEL.match(word)
    if match is None:
        raise UsageError(f"`{word}` is not a channel: use #channel or `here`.", topic="admin")
    return match.group(1)


def parse(text: str) -> AdminArgs:
    words = text.split()
    if not words:
        raise UsageError("Say what to do: allow, deny, clear, quota or list.", topic="admin")
    action = words[0].lower()
    if action == "list" and len(words) == 1:
        return AdminArgs("list")
    if action in ("allow", "deny", "clear") and len(words) == 2:
        return AdminArgs(action, _channel(words[1]))
    if action == "quota" and len(words) == 3:
        user = _USER.match(words[1])
        if user is None:
            raise UsageError(f"`{words[1]}` is not a person: use @name.", topic="admin")
        amount = words[2].replace(",", "").replace("_", "")
        if amount.lower() == "default":
            return AdminArgs("quota", user.group(1), None)
        if not amount.isdigit():
            raise UsageError("The quota is a number of tokens a day (0 for none), or `default`.",
                             topic="admin")
        return AdminArgs("quota", user.group(1), int(amount))
    raise UsageError(f"`admin {text.strip()}` is not something I can do.", topic="admin")


async def run(args: AdminArgs, ctx: CommandContext) -> None:
    policy = ctx.services.policy
    if not policy.is_admin(ctx.user_id):
        await ctx.respond(text=":lock: Only the bot's admins (listed in QWQBOT_ADMINS) can do "
                          "that.", response_type="ephemeral")
        return
    controls = ctx.services.controls
    target = ctx.channel_id if args.target == "here" else args.target
    if args.action in ("allow", "deny"):
        controls.set_access(target, args.action, by=ctx.user_id)
        text = f"<#{target}>: qwqbot is now {'allowed' if args.action == 'allow' else 'turned off'}."
    elif args.action == "clear":
        controls.set_access(target, None, by=ctx.user_id)
        text = f"<#{target}>: back to the configured default."
    elif args.action == "quota":
        controls.set_quota(target, args.tokens, by=ctx.user_id)
        limit = policy.daily_limit(target)
        text = f"<@{target}>: {format_tokens(limit) + ' tokens a day' if limit else 'no daily limit'}."
    else:
        rules = controls.access_rules()
        quotas = controls.quotas()
        lines = ["*Channel access*"] + [f"• <#{c}>: {r}" for c, r in sorted(rules.items())] + [
            f"• configured: allow {', '.join(ctx.services.settings.allowed_channels) or 'all'}; "
            f"deny {', '.join(ctx.services.settings.denied_channels) or 'none'}",
            "*Daily quotas*",
            f"• default: {_limit(ctx.services.settings.user_daily_tokens)}",
        ] + [f"• <@{u}>: {format_tokens(t) if t else 'no limit'}" for u, t in sorted(quotas.items())]
        text = "\n".join(lines)
    await ctx.respond(text=text, response_type="ephemeral")


def _limit(tokens: int) -> str:
    return f"{format_tokens(tokens)} tokens" if tokens else "none"


ADMIN = Subcommand(name="admin", parse=parse, run=run, examples=(
    Example("/qwq admin allow|deny|clear #channel", "(admins) turn the bot on or off in a channel",
            "/qwq admin deny #random"),
    Example("/qwq admin quota @person TOKENS|default", "(admins) a person's daily token quota",
            "/qwq admin quota @bob 100000"),
    Example("/qwq admin list", "(admins) access rules and quotas", "/qwq admin list"),
))
