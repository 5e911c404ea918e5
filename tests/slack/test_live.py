"""The native thread status and live (streamed) answers, through the real slack_sdk
client against the loopback fake Slack."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.calls import Calls
from qwqbot.slack.inert import SOMEONE, WORD_JOINER, Audience
from qwqbot.slack.limits import Limits
from qwqbot.slack.live import LiveAnswer, Streams
from qwqbot.slack.status import REFRESH, ThreadStatus


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _calls(slack) -> Calls:
    return Calls(AsyncWebClient(token="xoxb-test-token", base_url=slack.api_url,
                                retry_handlers=[]), Limits())


async def test_status_is_set_then_only_refreshed_when_due(slack):
    parent = slack.add_message("C1", user="U1", text="question")
    clock = Clock()
    status = ThreadStatus(_calls(slack), channel="C1", thread_ts=parent, clock=clock)
    assert await status.show("is thinking…", ["Thinking… 1 s"])
    assert await status.show("is thinking…", ["Thinking… 1 s"])  # unchanged: not sent
    clock.now += 1.0
    assert await status.show("is thinking…", ["Thinking… 2 s"])  # too soon: not sent
    clock.now += 5.0
    assert await status.show("is thinking…", ["Thinking… 7 s"])
    clock.now += REFRESH
    assert await status.show("is thinking…", ["Thinking… 7 s"])  # refresh before expiry
    sent = [s["loading_messages"] for s in slack.assistant_statuses if s["thread_ts"] == parent]
    assert sent == [["Thinking… 1 s"], ["Thinking… 7 s"], ["Thinking… 7 s"]]


async def test_status_falls_back_when_slack_refuses_it(slack):
    parent = slack.add_message("C1", user="U1", text="question")
    slack.fail_next("assistant.threads.setStatus", "not_allowed_token_type")
    status = ThreadStatus(_calls(slack), channel="C1", thread_ts=parent)
    assert not await status.show("is thinking…", [])
    assert not status.available


async def test_a_live_answer_streams_whole_words_then_stops(slack):
    parent = slack.add_message("C1", user="U1", text="question")
    clock = Clock()
    streams = Streams(Limits())
    live = LiveAnswer(_calls(slack), streams, channel="C1", thread_ts=parent,
                      recipient_user="U1", recipient_team="T1", clock=clock,
                      inert=lambda t: t.replace("<!here>", "@here"))
    await live.feed("Hel")  # no whole word yet
    assert not live.started
    await live.feed("Hello <!here> wor")
    assert live.started and streams.live == 1
    await live.feed("Hello <!here> world and more ")  # too soon for another append
    clock.now += 2
    await live.feed("Hello <!here> world and more ")
    await live.stop()
    assert streams.live == 0
    [message] = [m for m in slack.messages("C1", parent) if m.get("user") == "UBOT"]
    assert message["text"] == "Hello @here world and more "
    assert [c.method for c in slack.calls if c.method.startswith("chat.")][-3:] == [
        "chat.startStream", "chat.appendStream", "chat.stopStream"]


async def test_slack_gets_the_answer_so_far_made_inert_whole_not_chunk_by_chunk(slack):
    parent = slack.add_message("C1", user="U1", text="question")
    clock = Clock()
    live = LiveAnswer(_calls(slack), Streams(Limits()), channel="C1", thread_ts=parent,
                      recipient_user="U1", recipient_team="T1", clock=clock,
                      inert=Audience(frozenset({"U1"})))
    await live.feed("Hi <@U1> and <!here> ")
    clock.now += 2
    await live.feed("Hi <@U1> and <!here> plus <@U2> ")
    await live.stop()
    [message] = [m for m in slack.messages("C1", parent) if m.get("user") == "UBOT"]
    assert message["text"] == f"Hi <@U1> and @{WORD_JOINER}here plus {SOMEONE} "


async def test_a_stream_stops_growing_when_the_rest_changes_what_it_showed(slack):
    # Appended separately, "[https://good.example and " and "more](https://evil.example)"
    # would make one disguised link in Slack; judged whole, the stream stops before.
    parent = slack.add_message("C1", user="U1", text="question")
    clock = Clock()
    live = LiveAnswer(_calls(slack), Streams(Limits()), channel="C1", thread_ts=parent,
                      recipient_user="U1", recipient_team="T1", clock=clock)
    await live.feed("See [https://good.example and ")
    assert live.started
    for more in ("more](https://evil.example) now ", "more](https://evil.example) now and then "):
        clock.now += 2
        await live.feed("See [https://good.example and " + more)
    assert live.frozen and not slack.calls_to("chat.appendStream")
    await live.stop()
    assert slack.calls_to("chat.stopStream")
    [message] = [m for m in slack.messages("C1", parent) if m.get("user") == "UBOT"]
    assert message["text"] == "See [https://good.example and "


async def test_a_ping_split_across_appends_never_reaches_slack_whole(slack):
    parent = slack.add_message("C1", user="U1", text="question")
    clock = Clock()
    live = LiveAnswer(_calls(slack), Streams(Limits()), channel="C1", thread_ts=parent,
                      recipient_user="U1", recipient_team="T1", clock=clock)
    await live.feed("Hey <!channel|big ")
    clock.now += 2
    await live.feed("Hey <!channel|big news> today ")
    await live.stop()
    [message] = [m for m in slack.messages("C1", parent) if m.get("user") == "UBOT"]
    assert "<!" not in message["text"]


async def test_no_stream_starts_without_room_to_stop_it(slack):
    parent = slack.add_message("C1", user="U1", text="question")
    limits = Limits(per_minute={"chat.stopStream": 0})
    live = LiveAnswer(_calls(slack), Streams(limits), channel="C1", thread_ts=parent,
                      recipient_user="U1", recipient_team="T1")
    await live.feed("Hello world ")
    assert not live.started
    assert not slack.calls_to("chat.startStream")
