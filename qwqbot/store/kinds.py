"""The closed sets of words the store writes into its TEXT status, trigger and purpose columns.

SQLite keeps them as plain text, so nothing in the schema stops a misspelt status from being
written and then never matched by a query (``unfinished_answers`` looks for 'queued' and
'running', usage counts purpose 'answer'). Declared once here as ``Literal`` types, every writer
is checked by mypy; the column comments in ``migrations.py`` list the same words.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["AnswerStatus", "DigestRunStatus", "ModelCallPurpose", "Trigger"]

#: ``answers.status``: how far one attempt at answering got. 'queued' and 'running' are
#: unfinished (a restart marks them 'interrupted'); 'refused' was never sent to the model.
AnswerStatus = Literal["queued", "running", "done", "cut_off", "failed", "refused", "interrupted"]

#: ``answers.trigger``: what made the bot answer. 'command' is a public ``/qwq`` question,
#: 'private' one answered only to its asker; 'retry' and 'regenerate' are the buttons.
Trigger = Literal["mention", "thread", "dm", "command", "private", "retry", "regenerate"]

#: ``model_calls.purpose``: what a model call was for.
ModelCallPurpose = Literal["answer", "digest"]

#: ``digest_runs.status``: 'running' while claimed, then posted, empty (nothing to summarise)
#: or failed (claimed again on retry).
DigestRunStatus = Literal["running", "posted", "empty", "failed"]
