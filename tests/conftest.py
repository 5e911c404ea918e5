"""Shared fixtures: loopback fakes of the model server (and, later, Slack)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModelServer
from tests.fakes.slack_api import FakeSlack
from tests.slack.harness import Harness


@pytest.fixture
def model_server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("U1", name="alice", real_name="Alice Archer", display_name="Alice",
                      tz="Europe/Berlin")
        fake.add_user("U2", name="bob", real_name="Bob Baker", display_name="Bob",
                      tz="America/New_York")
        fake.add_channel("C1", name="general", members={"U1", "U2"})
        fake.add_channel("D1", name="alice-dm", is_im=True, members={"U1"})
        yield fake


@pytest.fixture
async def harness(slack: FakeSlack, model_server: FakeModelServer, tmp_path: Path,
                  request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    env = getattr(request, "param", {})
    h = Harness(slack, model_server, str(tmp_path / "bot.db"), **env)
    await h.start()
    yield h
    await h.stop()
