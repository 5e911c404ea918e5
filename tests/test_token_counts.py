"""Exact counts with Qwen's tokenizer: which model gets which counter, the chat framing against the
template as a server renders it, counts of parts against the count of the whole, the store's per-message
count, and the estimate staying high on the number-heavy text that Qwen splits digit by digit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwqbot.prompt_text import same_as_stored, stored_text, turn_text
from qwqbot.tokens import (
    ESTIMATE,
    MESSAGE_OVERHEAD,
    QWEN25,
    QWEN36,
    REPLY_OVERHEAD,
    STORED,
    counter_for_model,
    message_tokens,
)
from tests.fakes import chatml


@pytest.mark.parametrize(("model", "counter"), [
    ("Qwen/QwQ-32B", QWEN25),  # AI/ML API, vLLM
    ("qwen/qwq-32b", QWEN25),  # OpenRouter
    ("qwq-32b", QWEN25),  # DashScope
    ("qwq:32b", QWEN25),  # Ollama
    ("Qwen/QwQ-32B-AWQ", QWEN25),
    ("Qwen/Qwen2.5-72B-Instruct", QWEN25),
    ("qwen-max", QWEN25),
    ("accounts/fireworks/models/qwen3-235b-a22b", QWEN25),
    ("Qwen/Qwen3.6-27B", QWEN36),
    ("qwen3.5-35b-a3b", QWEN36),
    ("deepseek-ai/DeepSeek-R1", ESTIMATE),
    ("meta-llama/Llama-3.3-70B-Instruct", ESTIMATE),
    ("gpt-4o", ESTIMATE),
])
def test_counter_for_model(model, counter):
    assert counter_for_model(model) is counter


def test_only_the_exact_qwen25_counter_reads_stored_counts():
    assert STORED is QWEN25 and QWEN25.stored and QWEN25.exact
    assert not QWEN36.stored and QWEN36.exact
    assert not ESTIMATE.stored and not ESTIMATE.exact


@pytest.mark.parametrize(("text", "tokens"), [
    ("", 0),
    ("1700000000.000100", 17),  # a Slack ts: every digit is a token, and the dot
    ("user", 1), ("assistant", 1), ("system", 1),  # each role word of the template is one token
])
def test_qwen_counts_known_texts(text, tokens):
    assert QWEN25.tokens(text) == tokens


def test_message_framing_and_reply_opening_are_what_the_template_adds():
    # The fake server renders QwQ's template and counts the whole: what it adds to the contents is
    # exactly the framing qwqbot prices.
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3+3?"}]
    contents = sum(QWEN25.tokens(m["content"]) for m in messages)
    assert chatml.prompt_tokens(messages) == contents + len(messages) * MESSAGE_OVERHEAD + REPLY_OVERHEAD
    assert QWEN25.prompt_tokens(messages) == chatml.prompt_tokens(messages)


NUMERIC = {
    "csv": "\n".join(f"{i},{i * 37 % 1000}.{i % 97:02d},2026-11-{1 + i % 28:02d},{i * 7919 % 100000}"
                     for i in range(200)),
    "hex log": "\n".join(f"2026-11-30T09:{i % 60:02d}:{i * 7 % 60:02d}Z req={i * 2654435761 % 2**32:08x} "
                         f"span={i * 40503 % 2**16:04x} took {i % 900}ms" for i in range(200)),
    "slack ids": " ".join(f"<@U0{i * 104729 % 10**8:08d}> 1700{i:06d}.{i * 31 % 10**6:06d} "
                          f"<https://acme.slack.com/archives/C0{i:07d}/p1700{i:06d}{i % 10**6:06d}>"
                          for i in range(100)),
}


@pytest.mark.parametrize("kind", sorted(NUMERIC))
def test_the_estimate_stays_high_on_number_heavy_text(kind):
    # The estimate is what a model without a known tokenizer gets: it must not run low where Qwen's
    # tokenizer (a digit per token) makes the most tokens.
    text = NUMERIC[kind]
    exact = QWEN25.tokens(text)
    assert ESTIMATE.tokens(text) >= exact
    assert exact > len(text) / 3.2  # these really are token-dense: far above prose's ~4.5 chars a token


def test_the_store_counts_the_text_a_prompt_shows():
    text = "see <https://x.io/a|the docs> &amp; <#C1|general> 12345"
    shown = "see the docs (https://x.io/a) & #general 12345"
    assert turn_text(text, {}, bot_user_id=None, from_self=False) == shown
    assert message_tokens(text) == QWEN25.tokens(shown)
    assert message_tokens("  plain words \n") == QWEN25.tokens("plain words")
    assert message_tokens("") == 0
    # a leading mention is taken for the bot's (it is dropped); any other keeps its id (the name is
    # only known to the reader, and context assembly counts such a message again)
    assert message_tokens("<@UBOT> what is 1+1?") == QWEN25.tokens("what is 1+1?")
    assert message_tokens("thanks <@U0123ABCD>") == QWEN25.tokens("thanks @U0123ABCD")


FRAGMENTS = ["hello", " ", "\n", "?", "42", "<@U1>", "<@UBOT>", "<@U9|x>", "<@UBOT|qwqbot>", ", ", ": ",
             "<#C1|general>", "<!here>", "<https://example.com|docs>", "&amp;", "&lt;@U1&gt;", "<think>",
             "&lt;think&gt;"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join),
       st.sampled_from([{}, {"U1": "Alice", "U9": "Ivy Long-Name", "UBOT": "someone"}]))
def test_the_stored_text_is_what_the_prompt_shows_whenever_it_says_so(text, names):
    # The rule context assembly trusts a stored count by: when same_as_stored holds, any names give
    # the very text the store counted.
    if same_as_stored(text, bot_user_id="UBOT"):
        assert turn_text(text, names, bot_user_id="UBOT", from_self=False) == stored_text(text)
    assert same_as_stored("<@UBOT> hi <@UBOT>", bot_user_id="UBOT")
    assert not same_as_stored("<@UBOT> ask <@U1>", bot_user_id="UBOT")
    assert not same_as_stored("hi <@UBOT>", bot_user_id="UBOT")  # not leading: it reads "@qwqbot"
    assert same_as_stored("no mention at all", bot_user_id=None)


PIECES = ["the", " deploy", " failed", "1700000000.000100", "0x1f3a", ",", ".", "!", ";", " ", "  ",
          "\n", "\n\n", "<<", ">>", "(", ")", "你好", "世界", "é", "🎉", "—", "↳", "```", "    ", "\t",
          "@Alice", "<@U1>", "&amp;", "42", "x", '"', "=>", "${", "_#{"]
texts = st.lists(st.sampled_from(PIECES), min_size=1, max_size=20).map(lambda t: "".join(t).strip())
OPENING, CLOSING = '<<turn 7f3a9c1e5b2d4f60 from="Bob">>\n', "\n<<end 7f3a9c1e5b2d4f60>>"


def slack(text: str) -> int:
    """A join can cost one token *more* than its parts only after punctuation: of all 3-character runs
    of ASCII punctuation, 4 (such as '"=>') take one more token with the newline after them."""
    return 0 if not text or text[-1].isalnum() else 1


@settings(max_examples=400, deadline=None)
@given(texts)
def test_a_turns_parts_add_up_to_its_count(text):
    # What build_prompt adds up for a person's turn: its marker lines and its (stripped) text.
    whole = QWEN25.units(OPENING + text + CLOSING)
    parts = QWEN25.units(OPENING) + QWEN25.units(text) + QWEN25.units(CLOSING)
    assert whole - slack(text) <= parts <= whole + 3


@settings(max_examples=400, deadline=None)
@given(texts, texts)
def test_merged_messages_add_up_to_their_count(a, b):
    # Consecutive turns of one role share a message, joined by a blank line.
    whole = QWEN25.units(a + "\n\n" + b)
    parts = QWEN25.units(a) + QWEN25.units("\n\n") + QWEN25.units(b)
    assert whole - slack(a) <= parts <= whole + 3
    closing_then_opening = QWEN25.units(CLOSING + "\n\n" + OPENING)
    assert closing_then_opening <= QWEN25.units(CLOSING) + QWEN25.units("\n\n") + QWEN25.units(OPENING)
