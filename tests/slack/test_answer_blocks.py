"""Answers as markdown blocks: Slack's limits, tables, and the inert hook."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from qwqbot.slack.answer_blocks import MESSAGE_MARKDOWN, answer_payloads, preview, tables_as_code
from qwqbot.slack.inert import SOMEONE, WORD_JOINER, Audience


def test_a_short_answer_is_one_markdown_block_slack_accepts():
    [message] = answer_payloads("**Yes.** Use `sorted()`.")
    assert message["blocks"] == [{"type": "markdown", "text": "**Yes.** Use `sorted()`."}]
    assert message["text"] == "Yes. Use sorted()."
    for block in message["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]


def test_a_long_answer_is_split_within_the_markdown_limit_keeping_code_fences_balanced():
    code = "```\n" + "\n".join(f"line {i}" for i in range(3000)) + "\n```"
    answer = "Intro paragraph.\n\n" + code + "\n\nThe end."
    messages = answer_payloads(answer)
    assert len(messages) > 1
    for message in messages:
        text = message["blocks"][0]["text"]
        assert len(text) <= MESSAGE_MARKDOWN
        assert text.count("```") % 2 == 0
    joined = "\n".join(m["blocks"][0]["text"] for m in messages)
    assert "line 0" in joined and "line 2999" in joined and "The end." in joined


def test_tables_become_aligned_code_blocks():
    md = "Before\n\n| algo | avg |\n|---|---|\n| quick | n log n |\n| merge | n log n |\n\nAfter"
    out = tables_as_code(md)
    assert "```\nalgo   avg\n-----  -------\nquick  n log n\nmerge  n log n\n```" in out
    assert out.startswith("Before") and out.endswith("After")


def test_the_inert_hook_sees_all_text_and_a_note_goes_last():
    messages = answer_payloads("ping <!channel> now", note=":warning: cut off",
                               inert=lambda t: t.replace("<!channel>", "@channel"))
    assert messages[0]["blocks"][0]["text"] == "ping @channel now"
    assert messages[-1]["blocks"][-1] == {
        "type": "context", "elements": [{"type": "mrkdwn", "text": ":warning: cut off"}]}


def test_by_default_no_one_is_pinged_mentioned_or_misled():
    [message] = answer_payloads("Hi <!here> <@U1>, see [https://good.example](https://evil.example/x)")
    assert message["blocks"][0]["text"] == \
        f"Hi @{WORD_JOINER}here {SOMEONE}, see <https://evil.example/x>"
    assert "<!" not in message["text"] and "<@U1>" not in message["text"]


def test_the_notification_text_is_made_inert_after_its_marks_are_dropped():
    # The preview drops "#": "<#!channel>" would become a ping there, after the body's check.
    [message] = answer_payloads("Note <#!channel> here",
                                inert=lambda t: t.replace("<!channel>", "@channel"))
    assert message["text"] == "Note @channel here"


def test_the_conversations_people_stay_mentioned():
    [message] = answer_payloads("Thanks <@U1>!", inert=Audience(frozenset({"U1"})))
    assert message["blocks"][0]["text"] == "Thanks <@U1>!"
    assert message["text"] == "Thanks <@U1>!"


def test_an_empty_answer_still_says_so():
    assert "no answer" in answer_payloads("  ")[0]["blocks"][0]["text"]


def test_preview_is_short_and_plain():
    assert preview("# Title\n\n**bold** " + "word " * 200).startswith("Title bold word")
    assert len(preview("word " * 200)) <= 300


_LINES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=300),
    st.just("```"), st.just("```python"), st.just(""), st.just("| a | b |"), st.just("|---|---|"),
    st.builds(lambda w: "- " + w, st.text(max_size=50)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINES, max_size=200), st.integers(min_value=1, max_value=40))
def test_every_answer_becomes_valid_messages_within_slacks_limits(lines, repeat):
    markdown = "\n".join(lines * repeat)
    messages = answer_payloads(markdown)
    assert messages
    for message in messages:
        [block] = message["blocks"]
        assert block["type"] == "markdown"
        assert 0 < len(block["text"]) <= MESSAGE_MARKDOWN
        assert len(message["text"]) <= 300
        Block.parse(block).validate_json()  # type: ignore[union-attr]
