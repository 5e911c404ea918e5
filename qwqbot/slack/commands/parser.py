"""``/qwq`` text -> (subcommand, arguments). Pure; the listener acks from its result.

A first word that names a subcommand selects it; anything else is a question. A first
word that is *almost* a subcommand (``privte``, ``digset``) is refused with a hint rather
than sent to the model as a public question: a typo must never publish a private one.
"""

from __future__ import annotations

import difflib
from typing import Any

from qwqbot.slack.commands.base import Subcommand, UsageError


def parse(text: str, subcommands: dict[str, Subcommand], default: Subcommand,
          ) -> tuple[Subcommand, Any]:
    text = text.strip()
    if not text:
        return subcommands["help"], None
    first, _, rest = text.partition(" ")
    word = first.lower()
    if word in subcommands:
        sub = subcommands[word]
        return sub, sub.parse(rest.strip())
    if word.startswith("-") and len(word) > 1:
        raise UsageError(f"Unknown option `{first}`.")
    close = difflib.get_close_matches(word, list(subcommands), n=1, cutoff=0.8)
    if close and len(word) >= 4:
        raise UsageError(f"Unknown subcommand `{first}` — did you mean `{close[0]}`? To ask it "
                         "as a question, rephrase so it does not start with that word.")
    return default, default.parse(text)


def usage_text(subcommands: dict[str, Subcommand], default: Subcommand, *,
               problem: str | None = None, topic: str | None = None) -> str:
    """The help text, shown only to the user; ``problem`` first when there is one."""
    lines = [f":warning: {problem}", ""] if problem else []
    shown = [default] + [s for s in subcommands.values() if s.listed and s is not default]
    if topic and topic in subcommands:
        shown = [subcommands[topic]]
    else:
        lines.append("*qwqbot* asks Qwen's QwQ-32B reasoning model. Commands:")
    for sub in shown:
        for ex in sub.examples:
            lines.append(f"• `{ex.syntax}` — {ex.summary}  _e.g._ `{ex.example}`")
    if not topic:
        lines += ["", "You can also mention @qwqbot in a channel or send it a direct message; "
                  "replies in its threads continue the conversation."]
    return "\n".join(lines)
