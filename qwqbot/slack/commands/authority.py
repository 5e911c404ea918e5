"""Who may change what a whole channel gets from the bot: its instructions for the model
(``/qwq settings prompt``) and its digests.

Both shape what everyone in the channel reads, so not every member may change them: the
bot's admins (``QWQBOT_ADMINS``) and the channel's creator may, and a digest also the
person who set it. The creator is the ``creator`` of conversations.info
(https://docs.slack.dev/reference/methods/conversations.info), read fresh because this
decides a permission; in a DM with the bot, the person in it is its creator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qwqbot.slack.commands.base import CommandContext


@dataclass(frozen=True)
class Stewards:
    """Who looks after one channel's shared settings, as seen by one person."""

    user_id: str
    creator: str | None
    admin: bool

    def allow(self, owners: Iterable[str] = ()) -> bool:
        """Whether ``user_id`` may change it; ``owners``: who set what would be changed
        (each of them may change what only they set)."""
        owned = set(owners)
        return self.admin or self.user_id == self.creator or owned == {self.user_id}

    def who(self, owners: Iterable[str] = ()) -> str:
        """The people who may, in words (mrkdwn)."""
        owned = set(owners)
        names = [f"<@{o}>" for o in owned if len(owned) == 1 and o != self.creator]
        names.append(f"this channel's creator (<@{self.creator}>)" if self.creator
                     else "this channel's creator")
        names.append("the bot's admins")
        return ", ".join(names[:-1]) + " or " + names[-1]


async def stewards(ctx: CommandContext) -> Stewards:
    info = await ctx.services.channels.info(ctx.channel_id, fresh=True) or {}
    creator = info.get("user") if info.get("is_im") else info.get("creator")
    return Stewards(user_id=ctx.user_id, creator=str(creator) if creator else None,
                    admin=ctx.services.policy.is_admin(ctx.user_id))
