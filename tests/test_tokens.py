"""The token estimate: the rates it promises per script, that it never undercuts the plain
"CJK 1 each, the rest len/3.6" rule, and the additivity context assembly relies on."""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwqbot.tokens import (
    MESSAGE_OVERHEAD,
    REPLY_OVERHEAD,
    UNITS_PER_TOKEN,
    estimate_messages,
    estimate_tokens,
    token_units,
    tokens_from_units,
)

# Independent of the implementation's byte arithmetic: the blocks the brief names as CJK.
CJK_RANGES = [
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x3400, 0x4DBF),  # Extension A
    (0x4E00, 0x9FFF),  # Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFF00, 0xFFEF),  # halfwidth and fullwidth forms
]


def is_cjk(ch: str) -> bool:
    return any(lo <= ord(ch) <= hi for lo, hi in CJK_RANGES)


def brief_rule(text: str) -> int:
    """The brief's formula: CJK characters 1 token each, ASCII digits 2 (one for the digit, one for
    the word it splits), everything else len/3.6, rounded up."""
    cjk = sum(map(is_cjk, text))
    digits = sum(ch in "0123456789" for ch in text)
    return cjk + 2 * digits + math.ceil(Fraction(len(text) - cjk - digits) / Fraction("3.6"))


def test_empty():
    assert estimate_tokens("") == 0
    assert estimate_messages([]) == REPLY_OVERHEAD  # a prompt always ends with the reply's opening


@pytest.mark.parametrize(("text", "tokens"), [
    ("a", 1), ("abc", 1), ("abcd", 2), ("x" * 36, 10), ("x" * 37, 11), ("x" * 360, 100),
])
def test_ascii_is_len_over_3_6_rounded_up(text, tokens):
    assert estimate_tokens(text) == tokens


@pytest.mark.parametrize(("text", "tokens"), [
    ("你好世界", 4),  # Han
    ("こんにちは", 5),  # Hiragana
    ("カタカナ", 4),  # Katakana
    ("ｶﾀｶﾅ", 4),  # halfwidth Katakana
    ("안녕하세요", 5),  # Hangul
    ("ＡＢＣ１２３", 6),  # fullwidth forms
    ("。、「」", 4),  # CJK punctuation
    ("\u3400\uf900", 2),  # Extension A, compatibility ideograph
])
def test_cjk_is_one_token_per_character(text, tokens):
    assert estimate_tokens(text) == tokens


def test_mixed_text_adds_up_before_rounding():
    # 6 ASCII characters (6/3.6 = 1.67) + 2 Han (2) = 3.67 -> 4
    assert estimate_tokens("hello 世界") == 4


@pytest.mark.parametrize(("text", "tokens"), [
    ("привет", 3),  # Cyrillic: 2-byte, 1/2 token each
    ("café", 2),  # 3/3.6 + 1/2 = 1.33 -> 2
    ("🎉", 2),  # emoji: 4-byte, 1.5 tokens
    ("🎉🎉", 3),
    ("\U00020000", 2),  # a rare CJK ideograph (Extension B), 4-byte like emoji
])
def test_other_scripts_are_priced_high_on_purpose(text, tokens):
    assert estimate_tokens(text) == tokens


def test_lone_surrogate_does_not_raise():
    # Possible in text decoded from JSON ("\ud800"); it must be counted, not crash the prompt.
    assert estimate_tokens("\ud800") == 1


def test_estimate_is_conservative_against_measured_rates():
    prose = (
        "The quick brown fox jumps over the lazy dog. Reasoning models think for a long time "
        "before they answer, so the context budget must leave room for thousands of tokens. "
    ) * 20
    code = "def handler(event: dict[str, str]) -> None:\n    return process(event['text'].strip())\n" * 20
    chinese = "我们需要估计令牌数量，以便不超过上下文窗口。" * 20
    japanese = "トークン数を見積もって、コンテキストを超えないようにします。" * 20
    # measured chars/token for Qwen2.5 (see qwqbot/tokens.py): prose 4.5, code 4.0, Chinese 1.7, Japanese 1.6
    for text, chars_per_token in ((prose, 4.5), (code, 4.0), (chinese, 1.7), (japanese, 1.6)):
        assert estimate_tokens(text) >= len(text) / chars_per_token
    # ... but not so high that it wastes the window on English
    assert estimate_tokens(prose) <= len(prose) / 3.4


def test_message_overhead():
    messages = [
        {"role": "system", "content": "abcd"},  # 2
        {"role": "user", "content": "你好"},  # 2
        {"role": "assistant", "content": ""},  # 0
    ]
    assert MESSAGE_OVERHEAD == REPLY_OVERHEAD == 5
    assert estimate_messages(messages) == 2 + 2 + 0 + 3 * MESSAGE_OVERHEAD + REPLY_OVERHEAD


def test_units_round_up_to_tokens():
    assert UNITS_PER_TOKEN == 18
    assert [tokens_from_units(u) for u in (0, 1, 17, 18, 19, 36)] == [0, 1, 1, 1, 2, 2]


any_text = st.text(st.characters(codec="utf-8"), max_size=200) | st.text(
    st.sampled_from("ab 1\n你好カナ한ＡéжΩ🎉"), max_size=60)


@given(any_text)
def test_never_below_the_brief_rule(text):
    assert estimate_tokens(text) >= brief_rule(text)


ascii_and_cjk = st.characters(max_codepoint=0x7F) | st.sampled_from("你好世界カタカナ한글ＡＢ。")


@given(st.text(ascii_and_cjk, max_size=200))
def test_equals_the_brief_rule_on_ascii_and_cjk(text):
    assert estimate_tokens(text) == brief_rule(text)


@given(any_text, any_text)
def test_units_are_additive_and_estimates_subadditive(a, b):
    # build_prompt prices merged messages from their parts: this is what makes that exact.
    assert token_units(a + b) == token_units(a) + token_units(b)
    assert max(estimate_tokens(a), estimate_tokens(b)) <= estimate_tokens(a + b)
    assert estimate_tokens(a + b) <= estimate_tokens(a) + estimate_tokens(b)


@given(st.lists(any_text, max_size=8))
def test_estimate_messages_is_the_sum(contents):
    messages = [{"role": "user", "content": c} for c in contents]
    assert estimate_messages(messages) == sum(estimate_tokens(c) + MESSAGE_OVERHEAD
                                              for c in contents) + REPLY_OVERHEAD
