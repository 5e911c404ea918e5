"""The chat.update budget as a pure object with an injected clock."""

from __future__ import annotations

import asyncio

from qwqbot.slack.progress import UpdateBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_uses_only_its_share_of_the_window():
    clock = Clock()
    budget = UpdateBudget(50, clock=clock)
    granted = sum(budget.try_take() for _ in range(100))
    assert granted == 30  # 60% of 50
    clock.now += 59.9
    assert not budget.try_take()  # the window still holds them
    clock.now += 0.2
    assert budget.try_take()


async def test_finals_are_never_refused_and_never_exceed_the_window():
    clock = Clock()
    budget = UpdateBudget(10, clock=clock)
    for _ in range(6):
        budget.try_take()
    for _ in range(4):
        await budget.take()  # room left for finals
    waiting = asyncio.create_task(budget.take())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the 11th call in a minute waits...
    clock.now += 60.1
    await asyncio.wait_for(waiting, 2)  # ...until the window has room
    assert budget.granted == 11


def test_pause_after_a_429_stops_progress_only():
    clock = Clock()
    budget = UpdateBudget(50, clock=clock)
    budget.pause(5)
    assert not budget.try_take()
    clock.now += 5.1
    assert budget.try_take()
