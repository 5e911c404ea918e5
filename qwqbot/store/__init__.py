"""SQLite memory of threads, answers, deliveries and usage."""

from qwqbot.store.store import Store, open_store

__all__ = ["Store", "open_store"]
