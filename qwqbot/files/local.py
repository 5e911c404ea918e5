"""Files from the terminal (``qwqbot ask --file PATH``): read, extracted and placed within the
budget exactly as files shared in Slack are, from the local disk instead of a download.

Synchronous: the terminal waits for its files anyway, before the one model call.
The type comes from the name (``mimetypes`` and the extension) and then the content, as for
a Slack file whose type Slack did not know; the caps are ``caps``'s.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qwqbot.files import caps
from qwqbot.files.budget import FileReport, StoredFile, file_room, place_files
from qwqbot.files.extract import BINARY_HINT, extract
from qwqbot.files.kinds import classify, extension, label
from qwqbot.files.shared import SharedFile
from qwqbot.tokens import estimate_tokens

_TS = "local"  # every terminal file belongs to the one question


@dataclass(frozen=True, slots=True)
class LocalFiles:
    files: list[SharedFile]  # for ``conversation.with_files``, in the order given
    report: FileReport


def _read(path: Path) -> StoredFile:
    name = path.name
    kind = classify(name=name, filetype=extension(name),
                    mimetype=mimetypes.guess_type(name)[0] or "")
    kind_label = label(kind, filetype=extension(name), name=name)
    if kind in ("image", "media"):
        return StoredFile(_TS, name, kind_label, None, unseen=True)
    if kind == "binary":
        return StoredFile(_TS, name, kind_label, None, reason=BINARY_HINT)
    size = path.stat().st_size
    if kind == "pdf" and size > caps.PDF_BYTES:
        return StoredFile(_TS, name, kind_label, None, reason=caps.too_large(size, caps.PDF_BYTES))
    with path.open("rb") as handle:
        data = handle.read(caps.PDF_BYTES if kind == "pdf" else caps.TEXT_BYTES + 1)
    complete = kind == "pdf" or len(data) <= caps.TEXT_BYTES
    extracted = extract(data[:caps.TEXT_BYTES] if not complete else data,
                                    "text" if kind == "unknown" else kind, complete=complete)
    if extracted.text is None:
        return StoredFile(_TS, name, kind_label, None, reason=extracted.reason or BINARY_HINT)
    return StoredFile(_TS, name, kind_label, extracted.text, partial=extracted.partial)


def read_local_files(paths: Sequence[Path], *, question: str, system_prompt: str,
                           budget_tokens: int) -> LocalFiles:
    """The files at ``paths`` as the prompt shows them within ``budget_tokens`` next to the
    system prompt and the question. OSError (a missing or unreadable path) is the caller's."""
    stored = [_read(path) for path in paths]
    room = file_room(budget_tokens, fixed_tokens=estimate_tokens(system_prompt) + 400,
                     question_tokens=estimate_tokens(question) + 20)
    placement = place_files(stored, room=room, question_ts=_TS)
    return LocalFiles(placement.by_ts.get(_TS, []), placement.report())
