"""Cutting a text to a token count at a readable boundary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qwqbot.files.cut import cut_to_tokens, fitting_prefix
from qwqbot.tokens import estimate_tokens


def test_a_text_that_fits_is_not_cut():
    assert cut_to_tokens("short\ntext", 100) == ("short\ntext", False)


def test_a_cut_falls_at_a_line_end_and_keeps_whole_lines():
    lines = [f"row {i},value {i * 7}" for i in range(1000)]
    text, cut = cut_to_tokens("\n".join(lines), 500)
    assert cut and estimate_tokens(text) <= 500
    shown = text.split("\n")
    assert shown == lines[:len(shown)]
    # the cut gives up less than a fifth of what fits (LINE_SHARE), plus the line it stops in
    assert estimate_tokens(text) >= 500 * 0.8 - max(estimate_tokens(line) for line in lines)


def test_one_enormous_line_is_cut_at_a_space():
    text, cut = cut_to_tokens("word " * 10_000, 100)
    assert cut and not text.endswith(" ") and set(text.split(" ")) == {"word"}
    assert estimate_tokens(text) <= 100


def test_text_without_spaces_is_cut_where_the_tokens_run_out():
    text, cut = cut_to_tokens("x" * 10_000, 100)
    assert cut and text == "x" * fitting_prefix("x" * 10_000, 100)


@given(st.text(min_size=0, max_size=400), st.integers(min_value=0, max_value=120))
def test_a_cut_never_exceeds_the_tokens_and_is_a_prefix(text, tokens):
    out, cut = cut_to_tokens(text, tokens)
    assert text.startswith(out)
    assert estimate_tokens(out) <= tokens
    assert cut == (estimate_tokens(text) > tokens)


@given(st.text(min_size=1, max_size=300), st.integers(min_value=0, max_value=100))
def test_the_fitting_prefix_is_the_longest_that_fits(text, tokens):
    n = fitting_prefix(text, tokens)
    assert estimate_tokens(text[:n]) <= tokens
    assert n == len(text) or estimate_tokens(text[:n + 1]) > tokens
