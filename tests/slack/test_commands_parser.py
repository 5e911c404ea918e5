"""The /qwq parser and usage text as pure functions."""

from __future__ import annotations

import pytest

from qwqbot.slack.commands import SUBCOMMANDS, parse_command, usage_help
from qwqbot.slack.commands.ask import ASK, PRIVATE, Ask
from qwqbot.slack.commands.base import UsageError


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP"])
def test_empty_and_help_select_help(text):
    sub, _ = parse_command(text)
    assert sub.name == "help"


def test_a_question_is_the_default():
    assert parse_command("Why is the sky blue?") == (ASK, Ask("Why is the sky blue?"))
    # a word that merely resembles nothing known stays a question
    assert parse_command("hello there")[0] is ASK


def test_private_question():
    assert parse_command("private  Is this rude?") == (PRIVATE, Ask("Is this rude?"))
    assert parse_command("Private x")[0] is PRIVATE


@pytest.mark.parametrize(("text", "problem"), [
    ("private", "Tell me what to ask"),
    ("help me", "`help` takes no arguments"),
    ("privte is this rude?", "Unknown subcommand `privte` — did you mean `private`?"),
    ("-p secret", "Unknown option `-p`"),
    ("x" * 30_001, "please keep it under 30,000"),
])
def test_bad_arguments_name_the_problem(text, problem):
    with pytest.raises(UsageError) as info:
        parse_command(text)
    assert problem in info.value.problem


def test_usage_lists_every_subcommand_with_an_example():
    text = usage_help()
    assert text.startswith("*qwqbot* asks")
    for sub in [ASK, *SUBCOMMANDS.values()]:
        for ex in sub.examples:
            assert f"`{ex.syntax}`" in text and f"`{ex.example}`" in text


def test_usage_with_a_problem_puts_it_first_and_can_focus_a_topic():
    text = usage_help("Tell me what to ask.", topic="private")
    assert text.splitlines()[0] == ":warning: Tell me what to ask."
    assert "/qwq private QUESTION" in text and "/qwq help" not in text
