"""One answer's model call, asked again once with fewer turns when the server finds the prompt too long.

The bot counts its prompt with the model's own tokenizer (``tokens.py``), so a refusal means the
server disagrees: its window is smaller than ``QWQBOT_CONTEXT_TOKENS`` says, it counts differently
(another tokenizer, other framing), or it reserves room we do not know of. What it stated decides the
second try's budget (:func:`retry_budget`): the room its window leaves next to ``max_tokens``, scaled
by how much more it counted than we did. The oldest turns go first, as always (``build_prompt``); if
the newest message alone does not fit that room, the user is told so plainly
(``MessageTooLongError``). A second refusal is shown as it is: asking a third time would only guess.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from qwqbot.conversation import Prompt
from qwqbot.errors import ModelContextLengthError
from qwqbot.model.events import Completion

__all__ = ["FittedCall", "retry_budget"]

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
#: What a retry keeps of the prompt when the server stated nothing usable: three quarters.
FALLBACK_SHARE = 0.75


def retry_budget(err: ModelContextLengthError, *, sent_tokens: int, max_tokens: int) -> int:
    """Tokens (ours) the prompt may have on the second try, after ``err`` refused one of
    ``sent_tokens`` sent with ``max_tokens``; 0 or less when the server's window has no room at all.

    Always below ``sent_tokens``: asking again with the same prompt would be refused again.
    """
    room: float | None = None
    if err.prompt_limit is not None:
        room = err.prompt_limit
    elif err.context_limit is not None:
        room = err.context_limit - max_tokens
    if room is not None and room <= 0:
        return int(room)
    if room is not None and err.prompt_tokens and err.prompt_tokens > sent_tokens:
        # The server counts more than we do: its room, in our tokens, is smaller by the same ratio.
        room = room * sent_tokens / err.prompt_tokens
    if room is None or room >= sent_tokens:
        room = sent_tokens * FALLBACK_SHARE
    return int(room)


class FittedCall:
    """Sends ``prompt``; on a context-length refusal, sends ``rebuild(budget)`` once instead.

    ``prompt`` is always the prompt last sent, so what is recorded about the call is what the server
    saw. ``rebuild`` may raise ``MessageTooLongError`` (the newest message does not fit the server's
    room); a refusal with no room at all is raised as a ``ModelContextLengthError`` that names the
    settings to change.
    """

    def __init__(self, prompt: Prompt, *, rebuild: Callable[[int], Awaitable[Prompt]],
                 max_tokens: int) -> None:
        self.prompt = prompt
        self.rebuild = rebuild
        self.max_tokens = max_tokens
        self.refits = 0

    async def complete(self, call: Callable[[Messages], Awaitable[Completion]]) -> Completion:
        try:
            return await call(self.prompt.messages)
        except ModelContextLengthError as err:
            budget = retry_budget(err, sent_tokens=self.prompt.estimated_tokens,
                                  max_tokens=self.max_tokens)
            log.warning("model server refused a %d-token prompt as too long (its window %s, its count "
                        "%s): asking again within %d tokens", self.prompt.estimated_tokens,
                        err.context_limit or err.prompt_limit or "not stated",
                        err.prompt_tokens or "not stated", budget)
            if budget <= 0:
                raise self._no_room(err) from err
            self.prompt = await self.rebuild(budget)
            self.refits += 1
        return await call(self.prompt.messages)

    def _no_room(self, err: ModelContextLengthError) -> ModelContextLengthError:
        limit = err.prompt_limit or err.context_limit or 0
        return ModelContextLengthError(
            f"The model server's context window ({limit:,} tokens) leaves no room for a question next "
            f"to the {self.max_tokens:,} tokens the bot keeps for the answer.",
            hint=f"Ask the bot's operator to set QWQBOT_CONTEXT_TOKENS to {limit} and QWQBOT_MAX_TOKENS "
            "well below it.", status=err.status, context_limit=err.context_limit,
            prompt_limit=err.prompt_limit, prompt_tokens=err.prompt_tokens)
