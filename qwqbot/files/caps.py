"""How much of a shared file is read, wherever it comes from (Slack or the terminal).

2 MiB of text is about 600,000 tokens (``qwqbot.tokens``: ASCII at 3.6 characters a token),
more than QwQ's whole context window (131,072 tokens, https://huggingface.co/Qwen/QwQ-32B):
reading further could only be cut away again. A PDF holds much besides its text (fonts,
images), so its cap is larger; beyond it, the file is not read at all.
"""

from __future__ import annotations

#: Bytes read of a text file; a longer one counts as shortened.
TEXT_BYTES = 2 * 1024 * 1024
#: A PDF larger than this is not read.
PDF_BYTES = 20 * 1024 * 1024


def megabytes(size: int) -> str:
    """``size`` bytes for people: ``3.2 MB``."""
    return f"{size / (1024 * 1024):,.1f} MB"


def too_large(size: int, cap: int) -> str:
    """Why a PDF of ``size`` bytes is not read."""
    return f"it is too large ({megabytes(size)}; PDFs are read up to {megabytes(cap)})"
