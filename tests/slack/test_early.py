"""Edits and deletions kept for posts not seen yet (qwqbot/slack/early.py)."""

from __future__ import annotations

from qwqbot.slack.early import EarlyChanges


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_change_waits_for_its_post_then_expires() -> None:
    clock = Clock()
    early = EarlyChanges(keep_s=60, clock=clock)
    early.keep("C1", "1.1", text="edited", edited_ts="2.2")
    change = early.find("C1", "1.1")
    assert change is not None and change.text == "edited"
    assert early.find("C1", "1.1") is not None  # still there for the post's second event
    clock.now = 61
    assert early.find("C1", "1.1") is None


def test_a_deletion_wins_over_a_later_edit() -> None:
    early = EarlyChanges(clock=Clock())
    early.keep("C1", "1.1", text=None)
    early.keep("C1", "1.1", text="edited after?")
    change = early.find("C1", "1.1")
    assert change is not None and change.text is None


def test_the_oldest_go_first_past_the_limit() -> None:
    early = EarlyChanges(limit=2, clock=Clock())
    for ts in ("1", "2", "3"):
        early.keep("C1", ts, text=ts)
    assert len(early) == 2
    assert early.find("C1", "1") is None and early.find("C1", "3") is not None
