"""What every /qwq subcommand is made of: a pure argument parser and an async runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from qwqbot.slack.services import Services


class UsageError(Exception):
    """Bad arguments: ``problem`` is shown first, then the usage text."""

    def __init__(self, problem: str, *, topic: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        #: the subcommand whose usage to show (None: all of them)
        self.topic = topic


@dataclass(frozen=True)
class Example:
    syntax: str  # e.g. "/qwq private QUESTION"
    summary: str  # what it does
    example: str  # a real invocation


@dataclass(frozen=True)
class CommandContext:
    """Everything a runner may use: the slash-command payload and the bot's services."""

    team_id: str
    channel_id: str
    channel_name: str
    user_id: str
    response_url: str
    trigger_id: str
    services: Services
    #: ephemeral reply to the user, through response_url
    respond: Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Subcommand:
    name: str
    examples: tuple[Example, ...]
    #: text after the subcommand name -> arguments for ``run``; raises UsageError. Pure.
    parse: Callable[[str], Any]
    #: does the work after Slack has its ack
    run: Callable[[Any, CommandContext], Awaitable[None]]
    #: listed in help (the default "ask" has its own line)
    listed: bool = True
