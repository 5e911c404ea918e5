"""A fast, offline, deliberately high estimate of how many tokens QwQ's tokenizer makes of a text.

Why an estimate: the exact Qwen2.5 tokenizer (byte-level BPE, 151,643 regular tokens:
https://qwen.readthedocs.io/en/latest/getting_started/concepts.html) is a download plus a dependency,
and the context budget only needs to be safe, not exact; the server's ``usage.prompt_tokens`` tells
us afterwards how far off we were.

Measured characters per token for Qwen2.5: English prose ~4.5, code ~4.0, Chinese ~1.7, Japanese
~1.6. Every class is rounded *up*, because underestimating overflows the context window (the server
then refuses the whole request) while overestimating only drops an old message or two.

Characters are priced by their UTF-8 length, which sorts scripts the way a byte-level BPE sees them:

====== =========================================================== ==================
bytes  what                                                        tokens per char
====== =========================================================== ==================
1      ASCII: English, code                                        1/3.6 (measured 1/4-1/4.5)
2      accented Latin, Greek, Cyrillic, Hebrew, Arabic              1/2
3      CJK: Han, Hiragana, Katakana, Hangul, CJK punctuation,       1 (measured 0.6-1)
       fullwidth forms; also Indic, Thai, typographic punctuation
4      emoji, rare CJK (Extension B+)                               1.5
====== =========================================================== ==================

The 2- and 4-byte rates are not measured for Qwen; they are set high on purpose (an emoji alone is
1-3 tokens). Using bytes, not Unicode block tables, is what makes this fast: two C-level encodes per
text and no per-character Python, and ``isascii()`` (a flag check in CPython) short-circuits the
common all-ASCII message.

The estimate is computed in *units* of 1/18 token (ASCII 5, then 9 per extra UTF-8 byte: 9, 18, 27),
which makes it additive: ``token_units(a + b) == token_units(a) + token_units(b)``. Context assembly
relies on that to price a merged message from its parts without scanning text twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Chat-template framing per message (``<|im_start|>role\n ... <|im_end|>\n``), measured ~5 tokens.
MESSAGE_OVERHEAD = 5

#: Units per token: the least common multiple that makes 1/3.6 and 1/2 token whole numbers.
UNITS_PER_TOKEN = 18
_ASCII_UNITS = 5  # 18 / 5 = 3.6 characters per token
_EXTRA_BYTE_UNITS = 9  # per UTF-8 byte beyond a character's first: 2 bytes 1/2, 3 bytes 1, 4 bytes 1.5


def token_units(text: str) -> int:
    """The estimate for ``text`` in units of ``1 / UNITS_PER_TOKEN`` token; additive under concatenation."""
    n = len(text)
    if text.isascii():
        return n * _ASCII_UNITS
    # "surrogatepass": a lone surrogate (possible in text decoded from JSON) must not raise; it
    # counts as 3 bytes, like the rest of its block.
    n_bytes = len(text.encode("utf-8", "surrogatepass"))
    n_ascii = len(text.encode("ascii", "ignore"))
    return n_ascii * _ASCII_UNITS + (n_bytes - n) * _EXTRA_BYTE_UNITS


def tokens_from_units(units: int) -> int:
    """Whole tokens for ``units``, rounded up."""
    return -(-units // UNITS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    """Estimated (high) number of tokens Qwen's tokenizer makes of ``text``; 0 for ``""``."""
    return tokens_from_units(token_units(text))


def estimate_messages(messages: Iterable[Mapping[str, str]]) -> int:
    """Estimated prompt tokens of OpenAI chat ``messages``: each content plus ``MESSAGE_OVERHEAD``."""
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in messages)
