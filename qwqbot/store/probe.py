"""A look at a database file that changes nothing: what ``qwqbot check`` reports.

Opened read-only (``mode=ro``, https://sqlite.org/uri.html#urimode), so a check never creates,
migrates or locks anything ``qwqbot run`` would then trip on.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from qwqbot.errors import StoreError
from qwqbot.store.migrations import migrations


def pending_migrations(path: Path) -> int:
    """How many migrations ``open_store`` would apply to the existing file at ``path``;
    StoreError saying what is wrong when it is not a readable SQLite database."""
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened: {exc}") from None
    try:
        conn.execute("PRAGMA schema_version").fetchone()  # reads the header: is it SQLite?
        return len(migrations.pending(Database(conn)))
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be read: {exc} (set QWQBOT_DB to another file, or "
                         "move this one aside to start afresh)") from None
    finally:
        conn.close()
