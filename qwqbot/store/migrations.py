"""Forward-only, named schema migrations, applied whenever the database opens.

Never edit a migration that has shipped: add a new one. sqlite-utils records each applied
name in ``_sqlite_migrations`` and runs each in its own transaction.

Times are REAL Unix seconds: range queries (usage per day, retention) stay index-friendly.
Slack timestamps (``ts``) stay TEXT: they are ids ("1700000000.000100"), and float
conversion would lose the microsecond digits that make them unique.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("qwqbot")


@migrations()
def m001_initial(db: Database) -> None:
    # Every message of the threads the bot takes part in (and, later, of digest channels).
    # Keyed by Slack's natural key so a redelivered event is an idempotent upsert.
    db.table("messages").create(
        {
            "channel_id": str,
            "ts": str,
            "thread_ts": str,  # the parent's ts; equal to ts for a parent; NULL if no thread
            "user_id": str,
            "text": str,
            "is_bot": int,
            "bot_id": str,
            "subtype": str,
            "edited_ts": str,
            "deleted": int,  # kept as a tombstone: the thread's shape stays known
            "created_at": float,
            "updated_at": float,
        },
        pk=("channel_id", "ts"),
        not_null={"channel_id", "ts"},
        defaults={"is_bot": 0, "deleted": 0, "text": ""},
    )
    # Context assembly reads one thread in ts order: this index makes that a range scan.
    db.table("messages").create_index(["channel_id", "thread_ts", "ts"])
    db.table("messages").create_index(["user_id"])

    # Threads the bot answers in. A thread row is what makes follow-ups without a mention
    # get answered, and records whether its history was backfilled from Slack.
    db.table("threads").create(
        {
            "channel_id": str,
            "thread_ts": str,
            "joined_at": float,
            "backfilled_at": float,
        },
        pk=("channel_id", "thread_ts"),
    )

    # One row per attempt at answering one user post. (channel_id, request_ts, attempt) is
    # unique, so two deliveries of the same post cannot both claim it.
    db.table("answers").create(
        {
            "id": int,
            "channel_id": str,
            "thread_ts": str,
            "request_ts": str,
            "attempt": int,
            "user_id": str,
            # The words these two columns hold are the Literal types of qwqbot/store/kinds.py.
            "trigger": str,  # mention | thread | dm | command | private | retry | regenerate
            "status": str,  # queued | running | done | failed | cut_off | refused | interrupted
            "placeholder_ts": str,
            "reasoning": str,
            "answer": str,
            "model": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "reasoning_tokens": int,
            "finish_reason": str,
            "error_kind": str,
            "error_message": str,
            "created_at": float,
            "started_at": float,
            "first_token_at": float,
            "finished_at": float,
        },
        pk="id",
        not_null={"channel_id", "request_ts", "status"},
        defaults={"attempt": 0},
    )
    db.table("answers").create_index(["channel_id", "request_ts", "attempt"], unique=True)
    db.table("answers").create_index(["status"])
    db.table("answers").create_index(["channel_id", "thread_ts"])

    # Durable dedupe of Slack deliveries: Bolt does not dedupe retries, and an in-memory
    # set would forget across a restart (https://api.slack.com/apis/events-api#retries).
    db.table("slack_events").create(
        {"event_id": str, "event_type": str, "channel_id": str, "ts": str, "received_at": float},
        pk="event_id",
    )
    db.table("slack_events").create_index(["received_at"])

    # One row per model call, answers and digests alike: the basis of usage and cost.
    db.table("model_calls").create(
        {
            "id": int,
            "answer_id": int,
            "purpose": str,  # answer | digest (kinds.ModelCallPurpose)
            "user_id": str,
            "channel_id": str,
            "model": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "reasoning_tokens": int,
            "total_tokens": int,
            "latency_ms": int,
            "finish_reason": str,
            "error_kind": str,
            "created_at": float,
        },
        pk="id",
    )
    db.table("model_calls").create_index(["created_at"])
    db.table("model_calls").create_index(["user_id", "created_at"])
    db.table("model_calls").create_index(["channel_id", "created_at"])

    # Display names for `<@U...>` and message authors; users.info is rate limited.
    db.table("users").create(
        {"user_id": str, "display_name": str, "real_name": str, "tz": str, "is_bot": int,
         "fetched_at": float},
        pk="user_id",
    )


@migrations()
def m002_answer_question(db: Database) -> None:
    # A private /qwq question has no thread to hold it: the answer row keeps the question,
    # so Retry can ask it again.
    db.table("answers").add_column("question", str)


@migrations()
def m003_digests(db: Database) -> None:
    # One schedule per channel and kind: setting "daily" again replaces the daily one.
    db.table("digest_schedules").create(
        {
            "id": int,
            "channel_id": str,
            "kind": str,  # daily | weekly
            "day": int,  # 0 = Monday (weekly only)
            "hour": int,
            "minute": int,
            "tz": str,
            "created_by": str,
            "created_at": float,
        },
        pk="id",
        not_null={"channel_id", "kind", "hour", "minute", "tz"},
    )
    db.table("digest_schedules").create_index(["channel_id", "kind"], unique=True)

    # One row per digest period: (channel_id, period_key) is unique, so two overlapping
    # runs, or a run repeated after a restart, cannot both post the same period.
    db.table("digest_runs").create(
        {
            "id": int,
            "channel_id": str,
            "schedule_id": int,
            "period_key": str,
            "period_start": float,
            "period_end": float,
            "status": str,  # running | posted | empty | failed (kinds.DigestRunStatus)
            "attempts": int,
            "messages": int,
            "parts": int,
            "digest": str,
            "reasoning": str,
            "message_ts": str,
            "error_kind": str,
            "error_message": str,
            "next_retry_at": float,
            "created_at": float,
            "finished_at": float,
        },
        pk="id",
        not_null={"channel_id", "period_key", "status"},
        defaults={"attempts": 1},
    )
    db.table("digest_runs").create_index(["channel_id", "period_key"], unique=True)
    db.table("digest_runs").create_index(["schedule_id", "period_end"])

    # Channels whose every message is kept (they have a digest), and since when: history
    # before that moment must be read from Slack.
    db.table("tracked_channels").create(
        {"channel_id": str, "tracked_since": float}, pk="channel_id")

    # Periods the bot was not running (found at start-up from the heartbeat): messages
    # posted then were never seen, so digests covering them read Slack history.
    db.table("downtime").create({"id": int, "start": float, "end": float}, pk="id")
    db.table("meta").create({"key": str, "value": str}, pk="key")


@migrations()
def m004_controls(db: Database) -> None:
    # Per-channel settings; NULL means "use the configured default".
    db.table("channel_settings").create(
        {
            "channel_id": str,
            "require_mention": int,
            "system_extra": str,
            "show_reasoning": int,
            "digest_tz": str,
            "digest_post_empty": int,
            "updated_by": str,
            "updated_at": float,
        },
        pk="channel_id",
    )
    # Admins' /qwq admin allow|deny, on top of the configured lists.
    db.table("channel_access").create(
        {"channel_id": str, "rule": str, "set_by": str, "set_at": float}, pk="channel_id")
    # Per-user daily token quota set by an admin, overriding the configured default.
    db.table("quotas").create(
        {"user_id": str, "daily_tokens": int, "set_by": str, "set_at": float}, pk="user_id")
    # Thumbs up/down per person per answer (a second click changes the vote).
    db.table("feedback").create(
        {"answer_id": int, "user_id": str, "value": str, "at": float},
        pk=("answer_id", "user_id"))
    db.table("feedback").create_index(["at"])
    # The ts of every message an answer occupies, so Regenerate can replace all of them.
    db.table("answers").add_column("message_ts", str)


@migrations()
def m005_assistant_threads(db: Database) -> None:
    # Threads of Slack's AI app split view
    # (https://docs.slack.dev/reference/events/assistant_thread_started). A row says the DM
    # thread is an assistant thread (only those take a title), which channel the user was
    # viewing (the thread context, replaced on assistant_thread_context_changed), and
    # whether the first question has titled it yet. Bolt's default keeps the context in
    # the metadata of the bot's first reply instead
    # (https://docs.slack.dev/tools/bolt-python/concepts/ai-apps), which costs a
    # conversations.replies per read and a chat.update per change, and has nowhere to go
    # before the first answer.
    db.table("assistant_threads").create(
        {
            "channel_id": str,
            "thread_ts": str,
            "user_id": str,
            "context_channel_id": str,
            "context_team_id": str,
            "context_enterprise_id": str,
            "started_at": float,
            "context_at": float,
            "titled_at": float,
        },
        pk=("channel_id", "thread_ts"),
    )


@migrations()
def m006_token_counts(db: Database) -> None:
    # Each message keeps its token count (tokens.message_tokens: Qwen2.5's exact count of the text
    # as a prompt shows it), computed once when it is saved or edited, so that assembling a long
    # thread's context adds numbers instead of tokenizing every message again. NULL means not
    # counted: readers count such a row themselves.
    db.table("messages").add_column("tokens", int)
    # Rows stored before this migration are counted here, in batches (a count is about 10-50 µs
    # of CPU; a million messages take a minute, once).
    from qwqbot.tokens import message_tokens  # local: the migration history must not grow imports

    # Read a page, then write it: no read stays open across the writes to the table it reads.
    last = -1
    while batch := db.execute(
            "SELECT rowid, text FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?",
            [last, _COUNT_BATCH]).fetchall():
        db.conn.executemany("UPDATE messages SET tokens = ? WHERE rowid = ?",
                            [(message_tokens(text or ""), rowid) for rowid, text in batch])
        last = batch[-1][0]
    # Counted context has room for more turns, so its assembly reads more: the thread's size is
    # counted on indexes alone (all its rows on the (channel_id, thread_ts, ts) index, minus its
    # tombstones on this small partial one) instead of reading every row for its `deleted` flag.
    db.execute("CREATE INDEX idx_messages_tombstones ON messages (channel_id, thread_ts, ts)"
               " WHERE deleted IS NOT 0")
    # The bot's own count of each answer's prompt, next to the server's usage.prompt_tokens: how far
    # the two drift apart is what the usage view shows operators.
    db.table("model_calls").add_column("estimated_prompt_tokens", int)


_COUNT_BATCH = 5000


@migrations()
def m008_message_files(db: Database) -> None:
    # Files shared with stored messages, and the text read from each: downloaded and
    # extracted once, so a follow-up in the thread reads it from here. One row per file per
    # message, keyed like the message (a file shared twice is read for each message; the
    # key makes a redelivered file_share event change nothing). ``status``: pending (not
    # read yet), check (Slack withheld its details, or it changed: ask files.info first),
    # read, unread (it never will be: ``reason`` says why), failed (a download that failed
    # or timed out: tried again by a later answer, ``attempts`` times at most), deleted
    # (file_deleted, or a tombstone in the message: kept so a redelivery cannot revive it).
    # ``user_id`` is the sharer's, for `qwqbot forget --user`.
    db.table("message_files").create(
        {
            "channel_id": str,
            "ts": str,
            "file_id": str,
            "position": int,  # its place among the message's files
            "thread_ts": str,
            "user_id": str,
            "name": str,
            "filetype": str,
            "mimetype": str,
            "mode": str,
            "size": int,
            "url": str,
            "external": int,
            "status": str,
            "kind": str,
            "text": str,
            "reason": str,
            "partial": int,  # only the file's beginning was read (the size cap)
            "attempts": int,
            "created_at": float,
            "read_at": float,
        },
        pk=("channel_id", "ts", "file_id"),
        not_null={"channel_id", "ts", "file_id", "status"},
        defaults={"attempts": 0, "partial": 0, "external": 0},
    )
    # Answers read a thread's files; file_deleted and file_change name only the file.
    db.table("message_files").create_index(["channel_id", "thread_ts", "ts"])
    db.table("message_files").create_index(["file_id"])
    db.table("message_files").create_index(["user_id"])
