"""The /qwq command: one parser and dispatcher; each subcommand lives in its own module and
registers here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.answerer import Answerer
from qwqbot.slack.commands import ask, helptext
from qwqbot.slack.commands.base import CommandContext, Subcommand, UsageError
from qwqbot.slack.commands.parser import parse, usage_text
from qwqbot.store import Store

COMMAND = "/qwq"
DEFAULT = ask.ASK
SUBCOMMANDS: dict[str, Subcommand] = {s.name: s for s in (ask.PRIVATE, helptext.HELP)}


@dataclass(frozen=True)
class Services:
    answerer: Answerer
    store: Store
    client: AsyncWebClient


def parse_command(text: str) -> tuple[Subcommand, Any]:
    return parse(text, SUBCOMMANDS, DEFAULT)


def usage(problem: str | None = None, topic: str | None = None) -> str:
    return usage_text(SUBCOMMANDS, DEFAULT, problem=problem, topic=topic)


__all__ = ["COMMAND", "CommandContext", "Services", "UsageError", "parse_command", "usage"]
