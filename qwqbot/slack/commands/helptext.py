"""``/qwq help`` (and the empty command): handled entirely by the listener's ack."""

from __future__ import annotations

from qwqbot.slack.commands.base import CommandContext, Example, Subcommand, UsageError


def parse(text: str) -> None:
    if text:
        raise UsageError("`help` takes no arguments.")


async def run(args: None, ctx: CommandContext) -> None:
    return None  # the usage text already went out with the ack


HELP = Subcommand(name="help", parse=parse, run=run,
                  examples=(Example("/qwq help", "this list", "/qwq help"),))
