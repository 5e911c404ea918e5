"""A file as the prompt shows it: what ``conversation.with_files`` renders into a turn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SharedFile:
    number: int  # 1, 2, ... within one prompt: how the model (and a test) tells files apart
    name: str  # as the person named it: quoted and defused when rendered
    label: str  # its type in a word or two: "log", "CSV", "PDF", "PNG image"
    text: str | None  # what the model reads; None: it could not be read (see ``note``)
    #: for a text: how it was shortened ("" if whole); without one: why it cannot be read
    note: str = ""
