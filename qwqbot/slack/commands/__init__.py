"""The /qwq command: one parser and dispatcher; each subcommand lives in its own module and
registers here."""

from __future__ import annotations

from typing import Any

from qwqbot.slack.commands import admin, ask, digest, helptext, settings, usage
from qwqbot.slack.commands.base import CommandContext, Subcommand, UsageError
from qwqbot.slack.commands.parser import parse, usage_text

COMMAND = "/qwq"
DEFAULT = ask.ASK
SUBCOMMANDS: dict[str, Subcommand] = {
    s.name: s for s in (ask.PRIVATE, digest.DIGEST, usage.USAGE, settings.SETTINGS, admin.ADMIN,
                        helptext.HELP)}


def parse_command(text: str) -> tuple[Subcommand, Any]:
    return parse(text, SUBCOMMANDS, DEFAULT)


def usage_help(problem: str | None = None, topic: str | None = None) -> str:
    return usage_text(SUBCOMMANDS, DEFAULT, problem=problem, topic=topic)


__all__ = ["COMMAND", "CommandContext", "UsageError", "parse_command", "usage_help"]
