"""Markdown -> mrkdwn conversion, splitting, and the Slack payloads built on them.

Payloads are checked against slack_sdk's own models (which validate single blocks) plus the counts
slack_sdk does not check (blocks per message, block text per message).
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block

from qwqbot.slack.inert import Audience
from qwqbot.slack.mrkdwn import (
    HR_LINE,
    MIN_LIMIT,
    ZWSP,
    escape_text,
    head_cut,
    split_message,
    tail_cut,
    to_mrkdwn,
)
from qwqbot.slack.render import (
    RETRY_ACTION_ID,
    error_message,
    progress_message,
    reasoning_attachment,
    reasoning_title,
    retry_actions,
)

FENCE = "```"

# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= 50
    for block in blocks:
        Block.parse(block).to_dict()  # type: ignore[union-attr]  # raises on any invalid block
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150


def assert_valid_attachment(attachment: dict[str, Any]) -> None:
    Attachment(
        text=attachment["text"],
        fallback=attachment["fallback"],
        color=attachment["color"],
        title=attachment["title"],
        footer=attachment["footer"],
        markdown_in=attachment["mrkdwn_in"],
    ).to_dict()


def assert_valid_message(message: dict[str, Any]) -> None:
    assert message["text"]
    assert len(message["text"]) <= 4000
    assert_valid_blocks(message["blocks"])
    for attachment in message.get("attachments", []):
        assert_valid_attachment(attachment)


def block_text(block: dict[str, Any]) -> str:
    if block["type"] == "section":
        return str(block["text"]["text"])
    return "".join(element["text"] for element in block["elements"])


def visible(text: str) -> str:
    """Non-whitespace content with fence markers removed (the splitter may add those)."""
    return re.sub(r"\s", "", text.replace(FENCE, ""))


def fences_balanced(piece: str) -> bool:
    return piece.count(FENCE) % 2 == 0


# ---------------------------------------------------------------------------------------------------------
# to_mrkdwn: one example per rule
# ---------------------------------------------------------------------------------------------------------

CONVERSIONS = [
    # emphasis
    ("**bold** and __bold__", "*bold* and *bold*"),
    ("*em* and _em_", "_em_ and _em_"),
    ("~~gone~~", "~gone~"),
    ("***both***", "_*both*_"),
    ("**bold _and italic_**", "*bold _and italic_*"),
    ("**a **b** c**", "*a b c*"),  # Slack cannot nest a marker in itself
    ("**a\nb**", "*a*\n*b*"),  # Slack formatting never crosses a line break
    # markers glued to word characters get a zero-width space
    ("**bold**ly", f"*bold*{ZWSP}ly"),
    ("un*believ*able", f"un{ZWSP}_believ_{ZWSP}able"),
    ("**a**_b_", f"*a*{ZWSP}_b_"),
    ("~~x~~y", f"~x~{ZWSP}y"),
    ("**粗体**文字", f"*粗体*{ZWSP}文字"),
    # no markers added where Markdown has none
    ("use my_var_name and snake_case here", "use my_var_name and snake_case here"),
    ("*my_var*", "_my_var_"),
    ("2 * 3 * 4", "2 * 3 * 4"),
    # headings
    ("# Title", "*Title*"),
    ("## A **b** `c`\n\ntext", "*A b `c`*\n\ntext"),
    ("Setext\nheading\n===", "*Setext*\n*heading*"),
    ("# \n\ntext", "text"),
    # lists
    ("- a\n- b", "• a\n• b"),
    ("* a\n  * b\n    * c\n      * d\n* e", "• a\n    ◦ b\n        ▪ c\n            ▪ d\n• e"),
    ("1. one\n2. two", "1. one\n2. two"),
    ("3. c\n4. d", "3. c\n4. d"),
    ("1. a\n1. b\n1. c", "1. a\n2. b\n3. c"),  # numbered like a Markdown renderer would
    ("1. one\n   - sub\n2. two", "1. one\n    ◦ sub\n2. two"),
    ("- first\n  continued", "• first\n  continued"),
    ("- a\n\n  second para\n- b", "• a\n  second para\n• b"),
    ("- run:\n\n  ```sh\n  make\n  ```", "• run:\n```\nmake\n```"),
    ("-\n- b", "•\n• b"),
    # block quotes
    ("> a\n> b\n>\n> c", "> a\n> b\n>\n> c"),
    ("> - item", "> • item"),
    ("- > quoted", "• > quoted"),  # Slack quotes only at line start; inside a list the ">" just shows
    ("> a\n>\n> ```\n> code\n> ```\n> b", "> a\n```\ncode\n```\n> b"),
    # links and images
    ("[t](https://e.com/x?a=1&b=2)", "<https://e.com/x?a=1&amp;b=2|t>"),
    ("[**t**](https://u.com)", "<https://u.com|t>"),
    ("[a|b](https://u.com/a|b)", "<https://u.com/a%7Cb|a|b>"),
    ("<https://e.com/path>", "<https://e.com/path>"),
    ("<a@b.co>", "<mailto:a@b.co|a@b.co>"),
    ("![alt text](https://e.com/i.png)", "<https://e.com/i.png|alt text>"),
    ("![](https://e.com/i.png)", "<https://e.com/i.png>"),
    ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),  # unsafe: markdown-it leaves it as text
    # code
    ("use `a < b && c` now", "use `a &lt; b &amp;&amp; c` now"),
    ("`**not bold**`", "`**not bold**`"),
    ("`` a`b ``", "`aˋb`"),  # Slack inline code cannot hold a backtick
    ("```python\nif a < b:\n    print('&')\n```", "```\nif a &lt; b:\n    print('&amp;')\n```"),
    ("    indented\n    code", "```\nindented\ncode\n```"),
    ("````md\n```\ninner\n```\n````", f"```\n`{ZWSP}`{ZWSP}`\ninner\n`{ZWSP}`{ZWSP}`\n```"),
    ("```\na``````b\n```", f"```\na{ZWSP.join('``````')}b\n```"),
    ("```\n```", ""),
    # rules, breaks, paragraphs
    ("a\n\n---\n\nb", f"a\n\n{HR_LINE}\n\nb"),
    ("a\nb", "a\nb"),
    ("a  \nb", "a\nb"),
    ("a\\\nb", "a\nb"),
    ("a<br>b<br/>c", "a\nb\nc"),
    ("a\n\n\n\nb", "a\n\nb"),
    ("", ""),
    # escaping
    ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
    ("&amp; &lt;tag&gt; <div>", "&amp; &lt;tag&gt; &lt;div&gt;"),
    ("AT&T <script>x</script>", "AT&amp;T &lt;script&gt;x&lt;/script&gt;"),
    # Slack's own tokens survive
    (
        "<@U123ABC> <#C123|general> <!here> <!channel> <!subteam^S123>",
        "<@U123ABC> <#C123|general> <!here> <!channel> <!subteam^S123>",
    ),
    ("see <https://e.com/a_b|the *docs* here>", "see <https://e.com/a_b|the *docs* here>"),
    ("<!date^1392734382^{date_short}|Feb 18>", "<!date^1392734382^{date_short}|Feb 18>"),
    ("**hi <@U1>** & <@W2|bob>", "*hi <@U1>* &amp; <@W2|bob>"),
    ("- <@U1> ok\n- <!here>", "• <@U1> ok\n• <!here>"),
    ("`<@U1>`", "`&lt;@U1&gt;`"),  # in code a mention is code, not a mention
    ("type ``` to fence", f"type `{ZWSP}`{ZWSP}` to fence"),  # a stray fence in prose stays inert
    ("<!DOCTYPE html>", "&lt;!DOCTYPE html&gt;"),
]


@pytest.mark.parametrize(("markdown", "expected"), CONVERSIONS)
def test_to_mrkdwn(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected


def test_table_becomes_padded_monospace_block() -> None:
    markdown = "| Name | Qty | Note |\n|:--|--:|:-:|\n| **apple** | 3 | `fresh` |\n| kiwi | 12 | a<b |\n"
    expected = [
        "```",
        "Name  | Qty | Note",
        "------+-----+------",
        "apple |   3 | fresh",
        "kiwi  |  12 |  a&lt;b",
        "```",
    ]
    assert to_mrkdwn(markdown) == "\n".join(expected)


def test_table_pads_wide_characters_by_display_width() -> None:
    markdown = "| 名前 | n |\n|--|--|\n| 山田 | 1 |\n| Bob | 22 |"
    assert to_mrkdwn(markdown) == "```\n名前 | n\n-----+---\n山田 | 1\nBob  | 22\n```"


def test_paragraphs_lists_and_code_are_separated_by_blank_lines() -> None:
    markdown = "# Plan\nIntro text.\n- one\n- two\n\n```js\nx()\n```\nDone."
    assert to_mrkdwn(markdown) == "*Plan*\n\nIntro text.\n\n• one\n• two\n\n```\nx()\n```\n\nDone."


_TOKEN_SPAN = re.compile(r"<[^<>\n]+>")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab _*~`<>&#@!|[]()-\n:/.123U")), max_size=120))
def test_to_mrkdwn_leaves_no_unescaped_specials(markdown: str) -> None:
    out = to_mrkdwn(markdown)
    outside_tokens = _TOKEN_SPAN.sub("", out)
    assert "<" not in outside_tokens
    # Quote prefixes are Slack syntax (after list indentation they show as a plain ">", harmlessly).
    assert ">" not in re.sub(r"(?m)^[ •◦▪0-9.]*(> ?)+", "", outside_tokens)
    assert re.fullmatch(r"([^&]|&(amp|lt|gt);)*", outside_tokens, re.DOTALL)


# ---------------------------------------------------------------------------------------------------------
# split_message
# ---------------------------------------------------------------------------------------------------------


def test_short_text_is_one_piece() -> None:
    assert split_message("  hello\n\nworld  ", 3000) == ["hello\n\nworld"]
    assert split_message("", 3000) == []
    assert split_message(" \n\n ", 3000) == []


def test_splits_at_paragraphs_first() -> None:
    text = "aaaa aaaa\nbbbb\n\ncccc cccc\n\ndddd"
    assert split_message(text, 20) == ["aaaa aaaa\nbbbb", "cccc cccc\n\ndddd"]


def test_then_lines_then_words_then_characters() -> None:
    assert split_message("one two\nthree four five", 16) == ["one two", "three four five"]
    assert split_message("one two three four five six", 16) == ["one two three", "four five six"]
    assert split_message("x" * 40, 16) == ["x" * 16, "x" * 16, "x" * 8]


def test_long_code_block_is_closed_and_reopened() -> None:
    code = "\n".join(f"line {n}" for n in range(10))
    pieces = split_message(f"intro\n\n```\n{code}\n```\n\noutro", 40)
    assert pieces == [
        "intro",
        "```\nline 0\nline 1\nline 2\nline 3\n```",
        "```\nline 4\nline 5\nline 6\nline 7\n```",
        "```\nline 8\nline 9\n```\n\noutro",
    ]


def test_code_indentation_survives_a_cut() -> None:
    code = "def f():\n    return 1\n    # end"
    pieces = split_message(f"```\n{code}\n```", 30)
    assert pieces == ["```\ndef f():\n    return 1\n```", "```\n    # end\n```"]


def test_never_cuts_slack_tokens_or_entities() -> None:
    text = "see <https://example.com/a|the long label> and &amp;&amp;&amp; x"
    for limit in range(len("<https://example.com/a|the long label>"), len(text) + 1):
        for piece in split_message(text, limit):
            assert piece.count("<") == piece.count(">")
            assert not re.search(r"&[a-z]*$", piece), piece
    assert "<https://example.com/a|the long label>" in split_message(text, 40)


def test_unclosed_fence_is_closed_in_last_piece() -> None:
    assert split_message("text\n```\ncode", 3000) == ["text\n```\ncode\n```"]


def test_limit_below_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        split_message("text", MIN_LIMIT - 1)


def test_head_and_tail_cut_report_positions() -> None:
    text = "first para\n\nsecond para\n\nthird para"
    assert head_cut(text, 20) == ("first para", 12)
    assert tail_cut(text, 20) == ("third para", 25)
    assert tail_cut(text, 100) == (text, 0)


_WORD = st.text(alphabet="abcxyz", min_size=1, max_size=12)
_CHUNK = st.one_of(
    _WORD,
    _WORD,
    st.just(" "),
    st.just("\n"),
    st.just("\n\n"),
    st.just("&amp;"),
    st.just("&lt;"),
    st.just("<@U123ABC>"),
    st.just("<https://ex.com/p|a label>"),
    st.builds(lambda w: f"`{w} {w}`", _WORD),
    st.builds(
        lambda lines: "\n```\n" + "\n".join(lines) + "\n```\n",
        st.lists(st.text(alphabet="ab &;  ", max_size=30), min_size=1, max_size=12),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CHUNK, max_size=60).map("".join), st.integers(min_value=MIN_LIMIT, max_value=120))
def test_split_properties(text: str, limit: int) -> None:
    pieces = split_message(text, limit)
    assert all(len(piece) <= limit for piece in pieces)
    assert all(piece.strip() for piece in pieces)
    assert all(fences_balanced(piece) for piece in pieces)
    assert visible("".join(pieces)) == visible(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CHUNK, max_size=60).map("".join), st.integers(min_value=40, max_value=120))
def test_split_keeps_tokens_whole(text: str, limit: int) -> None:
    pieces = split_message(text, limit)
    tokens = re.findall(r"<[^<>\n]+>|&[a-z]+;", text)
    assert [t for piece in pieces for t in re.findall(r"<[^<>\n]+>|&[a-z]+;", piece)] == tokens


_MD_BLOCK = st.one_of(
    st.builds(lambda w: f"# {w}", _WORD),
    st.builds(
        lambda ws: " ".join(ws), st.lists(st.sampled_from(["**b**", "_i_", "w", "a&b", "<@U1>", "x<y"]))
    ),
    st.builds(lambda ws: "\n".join(f"- {w}" for w in ws), st.lists(_WORD, min_size=1, max_size=5)),
    st.builds(lambda ws: "```py\n" + "\n".join(ws) + "\n```", st.lists(_WORD, min_size=1, max_size=15)),
    st.builds(lambda ws: "| h | k |\n|---|---|\n" + "\n".join(f"| {w} | {w} |" for w in ws), st.lists(_WORD)),
)


# ---------------------------------------------------------------------------------------------------------
# answer_messages
# ---------------------------------------------------------------------------------------------------------


def _long_answer(target: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    words = [
        "reasoning",
        "**model**",
        "`code`",
        "snake_case",
        "a<b",
        "R&D",
        "<@U0ABC>",
        "[docs](https://e.com/a)",
    ]
    parts: list[str] = []
    n = 0
    while sum(map(len, parts)) < target:
        n += 1
        parts.append(f"## Section {n}")
        parts.append(" ".join(rng.choice(words) for _ in range(rng.randint(20, 120))))
        if n % 3 == 0:
            body = "\n".join(
                f"    x{i} = compute({i}) if x < {i} else y & {i}" for i in range(rng.randint(5, 150))
            )
            parts.append(f"```python\ndef f():\n{body}\n```")
        if n % 4 == 0:
            rows = "\n".join(f"| item {i} | **{i * 7}** | `v{i}` |" for i in range(rng.randint(3, 40)))
            parts.append(f"| name | value | code |\n|---|--:|---|\n{rows}")
        if n % 5 == 0:
            parts.append("\n".join(f"- point {i}\n  - detail {i}" for i in range(10)))
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------------------
# reasoning_attachment
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "seconds", "title"),
    [
        (1240, 38, "Reasoning · 1,240 tokens · 38 s"),
        (None, 38.4, "Reasoning · 38 s"),
        (1, None, "Reasoning · 1 token"),
        (None, None, "Reasoning"),
        (5000, 125, "Reasoning · 5,000 tokens · 2 min 5 s"),
    ],
)
def test_reasoning_title(tokens: int | None, seconds: float | None, title: str) -> None:
    assert reasoning_title(tokens, seconds) == title
    assert reasoning_attachment("x", tokens=tokens, seconds=seconds).payload["title"] == title


def test_short_reasoning_is_kept_whole_and_escaped() -> None:
    attachment = reasoning_attachment("If a < b && <@U1> said **so**", tokens=None, seconds=None,
                                      inert=Audience(frozenset({"U1"})))
    assert not attachment.truncated
    assert attachment.omitted_chars == 0
    assert attachment.payload["text"] == "If a &lt; b &amp;&amp; <@U1> said *so*"
    assert attachment.payload["fallback"] == "Reasoning"
    assert_valid_attachment(attachment.payload)


def test_reasoning_pings_nobody_and_names_strangers_by_default() -> None:
    attachment = reasoning_attachment("Tell <!channel> and <@U1>; see [https://good.example]"
                                      "(https://evil.example/x)", tokens=None, seconds=None)
    text = attachment.payload["text"]
    assert "<!channel>" not in text and "<@U1>" not in text and "@\u2060someone" in text
    assert "<https://evil.example/x>" in text and "good.example" not in text


def _long_reasoning(target: int) -> str:
    rng = random.Random(3)
    paragraphs = ["START of the reasoning."]
    while sum(map(len, paragraphs)) < target:
        paragraphs.append(
            " ".join(rng.choice(["Wait,", "so", "x < y", "&", "hmm", "the", "answer"]) for _ in range(60))
        )
        if len(paragraphs) % 9 == 0:
            paragraphs.append("```python\n" + "\n".join(f"print({i})" for i in range(30)) + "\n```")
    paragraphs.append("So the final answer is 42. END")
    return "\n\n".join(paragraphs)


def test_sixty_thousand_characters_of_reasoning_are_shortened_visibly() -> None:
    reasoning = _long_reasoning(60_000)
    attachment = reasoning_attachment(reasoning, tokens=15_000, seconds=312)
    payload = attachment.payload
    assert attachment.truncated
    assert len(payload["text"]) <= 7000
    assert payload["title"] == "Reasoning · 15,000 tokens · 5 min 12 s"
    assert payload["fallback"] == "Reasoning (15,000 tokens)"
    assert payload["text"].startswith("START of the reasoning.")
    assert payload["text"].endswith("So the final answer is 42. END")
    marker = f"_… {attachment.omitted_chars:,} characters omitted — full reasoning attached in the thread …_"
    assert f"\n\n{marker}\n\n" in payload["text"]
    # The count is of the reasoning's own characters (very long reasoning is cut before it
    # is converted, so escaping makes shown and omitted differ slightly from the raw text).
    shown = len(payload["text"]) - len(marker)
    assert abs(len(reasoning) - shown - attachment.omitted_chars) < 0.05 * len(reasoning)
    head, tail = payload["text"].split(marker)
    assert fences_balanced(head) and fences_balanced(tail)
    assert_valid_attachment(payload)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_MD_BLOCK, max_size=30).map("\n\n".join),
    st.integers(min_value=150, max_value=3000),
    st.integers(min_value=1, max_value=30),
)
def test_shortened_reasoning_always_fits(markdown: str, limit: int, repeat: int) -> None:
    attachment = reasoning_attachment(markdown * repeat, tokens=1, seconds=1, limit=limit)
    text = attachment.payload["text"]
    assert len(text) <= limit
    assert fences_balanced(text)
    assert attachment.truncated == ("characters omitted" in text)
    assert_valid_attachment(attachment.payload)


def test_limit_too_small_for_the_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        reasoning_attachment("x " * 500, tokens=None, seconds=None, limit=60)


def test_shortening_options() -> None:
    attachment = reasoning_attachment(
        "word " * 2000, tokens=None, seconds=None, limit=1000, omitted_hint="see the file", footer="custom"
    )
    assert attachment.truncated
    assert len(attachment.payload["text"]) <= 1000
    assert "characters omitted — see the file …_" in attachment.payload["text"]
    assert attachment.payload["footer"] == "custom"


# ---------------------------------------------------------------------------------------------------------
# progress_message and error_message
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            {"state": "thinking", "elapsed": 12.2, "reasoning_chars": 3400},
            ":thought_balloon: Thinking… 12 s · 3,400 characters of reasoning",
        ),
        ({"state": "thinking", "elapsed": 0.1, "reasoning_chars": 0}, ":thought_balloon: Thinking… <1 s"),
        (
            {"state": "queued", "elapsed": 0, "reasoning_chars": 0, "queued_position": 3},
            ":hourglass_flowing_sand: Queued — 3 answers ahead",
        ),
        (
            {"state": "queued", "elapsed": 0, "reasoning_chars": 0, "queued_position": 1},
            ":hourglass_flowing_sand: Queued — 1 answer ahead",
        ),
        (
            {"state": "queued", "elapsed": 0, "reasoning_chars": 0},
            ":hourglass_flowing_sand: Queued — you're next",
        ),
        (
            {"state": "writing", "elapsed": 40, "reasoning_chars": 9000},
            ":writing_hand: Writing the answer… 40 s",
        ),
    ],
)
def test_progress_message(kwargs: dict[str, Any], text: str) -> None:
    message = progress_message(**kwargs)
    assert message == {
        "text": text,
        "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}],
    }
    assert_valid_message(message)


def test_progress_message_rejects_unknown_state() -> None:
    with pytest.raises(ValueError, match="unknown progress state"):
        progress_message(state="sleeping", elapsed=1, reasoning_chars=0)


def test_error_message_with_retry() -> None:
    message = error_message(
        "Model timed out", "No answer after 5 min <@U1> & co.", retry_value="C1:1700000000.1"
    )
    assert message["blocks"] == [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": ":warning: *Model timed out*\nNo answer after 5 min <@U1> &amp; co.",
            },
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": RETRY_ACTION_ID,
                    "text": {"type": "plain_text", "text": "Retry", "emoji": True},
                    "value": "C1:1700000000.1",
                    "style": "primary",
                }
            ],
        },
    ]
    assert RETRY_ACTION_ID == "qwqbot_retry"
    assert retry_actions("C1:1700000000.1") == message["blocks"][1]
    assert message["text"] == ":warning: Model timed out: No answer after 5 min <@U1> &amp; co."
    assert_valid_message(message)


def test_error_message_without_retry_and_with_odd_input() -> None:
    message = error_message("**Bad**\ntitle", "x" * 5000, retry_value=None)
    assert [block["type"] for block in message["blocks"]] == ["section"]
    assert message["blocks"][0]["text"]["text"].startswith(":warning: *Bad title*\n")
    assert_valid_message(message)
    with pytest.raises(ValueError, match="2000"):
        error_message("t", "d", retry_value="v" * 2001)


def test_escape_text_keeps_slack_tokens() -> None:
    assert (
        escape_text("a<b & <@U1> <!here> <https://x.y|z> <i>")
        == "a&lt;b &amp; <@U1> <!here> <https://x.y|z> &lt;i&gt;"
    )
