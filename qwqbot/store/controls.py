"""Operators' controls in the store: channel settings, access rules, quotas, feedback,
retention and erasure."""

from __future__ import annotations

from typing import Any

from qwqbot.store.store import Store, writes_later, writes_now

# A digest run of a period in which the person (the query's one parameter) posted in its channel.
# Slack ts are TEXT of fixed width ("1700000000.000100"), compared as the prune does.
_POSTED_IN = ("EXISTS (SELECT 1 FROM messages m WHERE m.user_id = ?"
              " AND m.channel_id = digest_runs.channel_id"
              " AND m.ts >= printf('%.6f', digest_runs.period_start)"
              " AND m.ts < printf('%.6f', digest_runs.period_end))")

SETTING_COLUMNS = ("require_mention", "system_extra", "show_reasoning", "digest_tz",
                   "digest_post_empty")


class ControlStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # -- channel settings --------------------------------------------------------------

    def channel_settings(self, channel_id: str) -> dict[str, Any]:
        rows = list(self.db.query("SELECT * FROM channel_settings WHERE channel_id = ?",
                                  [channel_id]))
        return rows[0] if rows else {}

    @writes_now
    def set_channel_setting(self, channel_id: str, column: str, value: Any, *, by: str) -> None:
        if column not in SETTING_COLUMNS:
            raise ValueError(column)
        self.store.table("channel_settings").upsert(
            {"channel_id": channel_id, column: value, "updated_by": by,
             "updated_at": self.store.clock()}, pk="channel_id", alter=False)

    @writes_now
    def set_prompt(self, channel_id: str, text: str | None, *, by: str) -> None:
        """The channel's extra instructions for the model (None: none), and who set them:
        answers they shape name that person. The author goes in ``meta`` (key
        ``prompt_by:<channel>``), since ``updated_by`` changes with any other setting."""
        with self.db.atomic():
            self.set_channel_setting(channel_id, "system_extra", text, by=by)
            if text is None:
                self.db.execute("DELETE FROM meta WHERE key = ?", [_prompt_key(channel_id)])
            else:
                self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key)"
                                " DO UPDATE SET value = excluded.value",
                                [_prompt_key(channel_id), by])

    def prompt_author(self, channel_id: str) -> str | None:
        """Who set the channel's instructions; None if unknown (set before this was kept)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?",
                              [_prompt_key(channel_id)]).fetchone()
        return str(row[0]) if row else None

    # -- access and quotas -------------------------------------------------------------

    def access_rules(self) -> dict[str, str]:
        return {r["channel_id"]: r["rule"] for r in self.db.query("SELECT * FROM channel_access")}

    @writes_now
    def set_access(self, channel_id: str, rule: str | None, *, by: str) -> None:
        if rule is None:
            self.db.execute("DELETE FROM channel_access WHERE channel_id = ?", [channel_id])
        else:
            self.store.table("channel_access").upsert(
                {"channel_id": channel_id, "rule": rule, "set_by": by,
                 "set_at": self.store.clock()}, pk="channel_id")

    def quota(self, user_id: str) -> int | None:
        row = self.db.execute("SELECT daily_tokens FROM quotas WHERE user_id = ?",
                              [user_id]).fetchone()
        return int(row[0]) if row else None

    def quotas(self) -> dict[str, int]:
        return {r["user_id"]: r["daily_tokens"] for r in self.db.query("SELECT * FROM quotas")}

    @writes_now
    def set_quota(self, user_id: str, tokens: int | None, *, by: str) -> None:
        if tokens is None:
            self.db.execute("DELETE FROM quotas WHERE user_id = ?", [user_id])
        else:
            self.store.table("quotas").upsert(
                {"user_id": user_id, "daily_tokens": tokens, "set_by": by,
                 "set_at": self.store.clock()}, pk="user_id")

    # -- feedback ----------------------------------------------------------------------

    @writes_later
    def record_feedback(self, answer_id: int, user_id: str, value: str) -> None:
        self.store.table("feedback").upsert(
            {"answer_id": answer_id, "user_id": user_id, "value": value,
             "at": self.store.clock()}, pk=("answer_id", "user_id"))

    # -- retention and erasure ---------------------------------------------------------

    @writes_now
    def prune(self, *, older_than: float) -> dict[str, int]:
        """Drop stored messages older than the cutoff, and the text of older answers
        (their token counts stay: usage history is not conversation content)."""
        cutoff = f"{older_than:.6f}"
        with self.db.atomic():
            messages = self.db.execute("DELETE FROM messages WHERE ts < ?", [cutoff]).rowcount
            # Files read from those messages go with them (the same ts rule).
            self.db.execute("DELETE FROM message_files WHERE ts < ?", [cutoff])
            answers = self.db.execute(
                "UPDATE answers SET question = NULL, answer = NULL, reasoning = NULL"
                " WHERE created_at < ? AND (answer IS NOT NULL OR question IS NOT NULL"
                " OR reasoning IS NOT NULL)", [older_than]).rowcount
            self.db.execute("UPDATE digest_runs SET digest = NULL, reasoning = NULL"
                            " WHERE period_end < ? AND digest IS NOT NULL", [older_than])
            self.db.execute("DELETE FROM assistant_threads WHERE started_at < ?", [older_than])
            # Slack redelivers within minutes; a week of event ids is plenty for dedupe.
            self.db.execute("DELETE FROM slack_events WHERE received_at < ?",
                            [self.store.clock() - 7 * 86400])
        return {"messages": messages, "answers": answers}

    @writes_now
    def forget_user(self, user_id: str) -> dict[str, int]:
        """Their messages, the bot's answers to them (which repeat what they asked), and the
        text of every stored digest of a period in which they posted in its channel.

        A digest retells what was said without saying which line came from whom, so the whole
        text of each such digest goes (with its reasoning, and the bot's stored copy of the
        post); its row stays, so that period is not digested again. What stays: digests of
        periods they did not post in (others may have named them), and what is already in
        Slack, which only Slack can delete.
        """
        with self.db.atomic():
            # Which periods they posted in is known from their messages: before those go.
            self.db.execute(
                "DELETE FROM messages WHERE (channel_id, ts) IN (SELECT channel_id, message_ts"
                f" FROM digest_runs WHERE message_ts IS NOT NULL AND {_POSTED_IN})", [user_id])
            digests = self.db.execute(
                "UPDATE digest_runs SET digest = NULL, reasoning = NULL"
                f" WHERE (digest IS NOT NULL OR reasoning IS NOT NULL) AND {_POSTED_IN}",
                [user_id]).rowcount
            messages = self.db.execute("DELETE FROM messages WHERE user_id = ?",
                                       [user_id]).rowcount
            # The text of every file they shared, whichever thread it is in.
            self.db.execute("DELETE FROM message_files WHERE user_id = ?", [user_id])
            self.db.execute(
                "DELETE FROM messages WHERE (channel_id, ts) IN (SELECT channel_id, placeholder_ts"
                " FROM answers WHERE user_id = ? AND placeholder_ts IS NOT NULL)", [user_id])
            answers = self.db.execute(
                "UPDATE answers SET question = NULL, answer = NULL, reasoning = NULL"
                " WHERE user_id = ?", [user_id]).rowcount
            self.db.execute("DELETE FROM users WHERE user_id = ?", [user_id])
            self.db.execute("DELETE FROM assistant_threads WHERE user_id = ?", [user_id])
            self.db.execute("DELETE FROM feedback WHERE user_id = ?", [user_id])
        return {"messages": messages, "answers": answers, "digests": digests}

    @writes_now
    def forget_channel(self, channel_id: str) -> dict[str, int]:
        with self.db.atomic():
            messages = self.db.execute("DELETE FROM messages WHERE channel_id = ?",
                                       [channel_id]).rowcount
            self.db.execute("DELETE FROM message_files WHERE channel_id = ?", [channel_id])
            answers = self.db.execute(
                "UPDATE answers SET question = NULL, answer = NULL, reasoning = NULL"
                " WHERE channel_id = ?", [channel_id]).rowcount
            digests = self.db.execute(
                "UPDATE digest_runs SET digest = NULL, reasoning = NULL WHERE channel_id = ?"
                " AND (digest IS NOT NULL OR reasoning IS NOT NULL)", [channel_id]).rowcount
            self.db.execute("DELETE FROM threads WHERE channel_id = ?", [channel_id])
            self.db.execute("DELETE FROM assistant_threads WHERE channel_id = ?"
                            " OR context_channel_id = ?", [channel_id, channel_id])
        return {"messages": messages, "answers": answers, "digests": digests}


def _prompt_key(channel_id: str) -> str:
    return f"prompt_by:{channel_id}"
