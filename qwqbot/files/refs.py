"""A file shared with a Slack message, as plain data: what the Slack adapter hands the store.

Slack puts a file object per file in the ``files`` array of a ``file_share`` message
(https://docs.slack.dev/reference/objects/file-object): its id, name, ``filetype`` (Slack's
own short type: ``text``, ``python``, ``csv``, ``pdf``, ``png``...), ``mimetype``, ``size``,
``mode`` (``hosted``, ``snippet``, ``post``, ``external``, ``tombstone`` for a deleted one)
and ``url_private_download``. Files of Slack Connect channels may arrive with only their id
and ``"file_access": "check_file_info"``
(https://docs.slack.dev/reference/events/message/file_share): the rest must then be asked
for with files.info.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FileRef:
    id: str
    name: str
    filetype: str = ""
    mimetype: str = ""
    size: int | None = None
    mode: str = ""
    url: str = ""  # url_private_download: needs the bot token (files:read)
    external: bool = False
    #: Slack withheld the details: files.info must be asked before reading it
    check_info: bool = False


def file_ref(obj: Mapping[str, Any]) -> FileRef | None:
    """A Slack file object as a ``FileRef``; None without an id."""
    file_id = str(obj.get("id") or "")
    if not file_id:
        return None
    size = obj.get("size")
    return FileRef(
        id=file_id,
        name=str(obj.get("name") or obj.get("title") or file_id),
        filetype=str(obj.get("filetype") or ""),
        mimetype=str(obj.get("mimetype") or ""),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        mode=str(obj.get("mode") or ""),
        url=str(obj.get("url_private_download") or obj.get("url_private") or ""),
        external=bool(obj.get("is_external")) or obj.get("mode") == "external",
        check_info=obj.get("file_access") == "check_file_info",
    )
