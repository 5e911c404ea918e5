"""Command line: ``qwqbot run | ask | check | forget | digest | manifest`` (also
``python -m qwqbot``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from qwqbot import __version__
from qwqbot.config import Settings, load_settings
from qwqbot.errors import ConfigError, QwqbotError
from qwqbot.logs import setup_logging

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwqbot", description="QwQ-32B reasoning model in Slack.")
    parser.add_argument("--version", action="version", version=f"qwqbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the Slack bot")
    run.add_argument("--mode", choices=("socket", "http"),
                     help="socket (default when SLACK_APP_TOKEN is set) or http")
    run.add_argument("--port", type=int, help="HTTP-mode port (default: PORT or 3000)")

    ask = sub.add_parser("ask", help="ask the model one question from the terminal")
    ask.add_argument("question", nargs="+", help="the question (quote it, or several words)")
    ask.add_argument("--reasoning", "-r", action="store_true",
                     help="show the model's reasoning as it arrives")
    ask.add_argument("--file", "-f", action="append", default=[], metavar="PATH", type=Path,
                     help="a file for the model to read with the question (text, code, logs, "
                          "CSV, JSON, PDF); repeat for several")

    check = sub.add_parser("check", help="check what `run` needs: configuration, the Slack "
                           "tokens, the model endpoint, the database (changes nothing)")
    check.add_argument("--mode", choices=("socket", "http"),
                       help="check for this mode of `run` (default: the one `run` would use)")

    forget = sub.add_parser("forget", help="erase a person's or a channel's stored messages, "
                            "answers and digests")
    who = forget.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="Slack user id, e.g. U0123456789")
    who.add_argument("--channel", help="Slack channel id, e.g. C0123456789")

    digest = sub.add_parser("digest", help="channel digests")
    digest_sub = digest.add_subparsers(dest="digest_command", required=True, metavar="ACTION")
    run_digest = digest_sub.add_parser("run", help="make one digest of a channel now")
    run_digest.add_argument("channel", help="channel id, e.g. C0123456789")
    run_digest.add_argument("--dry-run", action="store_true",
                            help="print the digest instead of posting it")
    run_digest.add_argument("--hours", type=float,
                            help="period to cover (default: since the last digest, or 24 h)")
    run_digest.add_argument("--tz", default="UTC", help="time zone for times shown (IANA name)")

    manifest = sub.add_parser("manifest", help="print the Slack app manifest (manifest.yml), "
                              "or its HTTP-mode variant")
    manifest.add_argument("--http", metavar="URL",
                          help="the bot's public https:// address: prints the manifest for "
                          "HTTP mode, with URL/slack/events wherever Slack needs it")
    manifest.add_argument("--from", dest="source", default="manifest.yml", metavar="FILE",
                          help="the Socket Mode manifest to start from (default: manifest.yml "
                          "in this directory, the checkout's)")
    return parser


def forget_report(counts: dict[str, int], *, user: str | None, channel: str | None) -> str:
    """What ``qwqbot forget`` erased, and plainly what it could not."""
    who = user or channel
    done = (f"Erased {counts['messages']:,} stored messages, the text of {counts['answers']:,} "
            f"answers and the text of {counts['digests']:,} stored digests of {who}")
    if user:
        return (f"{done} (every stored digest of a period in which they posted in its channel).\n"
                "What stays: digests already posted in Slack stay there (delete them in Slack if "
                "they must go), and stored digests of periods they did not post in are kept, even "
                "where others named them.")
    return (f"{done}.\nWhat stays: messages and digests already posted in Slack stay there "
            "(delete them in Slack if they must go).")


def with_local_files(settings: Settings, question: str,
                     paths: Sequence[Path]) -> tuple[Settings, str]:
    """``ask --file``: the question with the files in it, fenced as in Slack, and the settings
    whose system prompt explains the fences; what was shortened or not read goes to stderr."""
    from qwqbot.conversation import FILE_RULES, new_nonce, with_files
    from qwqbot.files.footer import footer_lines
    from qwqbot.files.local import read_local_files

    local = read_local_files(paths, question=question, system_prompt=settings.system_prompt,
                             budget_tokens=settings.context_tokens - settings.max_tokens)
    for line in footer_lines(local.report, name=str):
        print("qwqbot: " + line.split(" ", 1)[1], file=sys.stderr)  # without the Slack emoji
    nonce = new_nonce()
    rules = FILE_RULES.format(nonce=nonce)
    return (replace(settings, system_prompt=f"{settings.system_prompt}\n\n{rules}"),
            with_files(question, local.files, nonce))


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """The bot's one event loop: uvloop where it is installed (Linux, macOS), which roughly
    halves the CPU cost of each Slack request and model chunk; plain asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return int(uvloop.run(main))


#: commands that speak for themselves: log lines would only repeat their errors
TERMINAL_COMMANDS = ("ask", "check", "digest", "forget")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "manifest":  # needs no configuration
        return print_manifest(args.source, http_url=args.http)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"qwqbot: {exc.user_message}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging("ERROR" if args.command in TERMINAL_COMMANDS else settings.log_level)
    try:
        return dispatch(args, settings)
    except KeyboardInterrupt:
        print("\nqwqbot: interrupted", file=sys.stderr)
        return 130
    except QwqbotError as exc:
        print(f"qwqbot: {exc.one_line()}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else 1


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from qwqbot.slack.server import serve

        mode = settings.run_mode(args.mode)
        return run_loop(serve(settings, mode=mode, port=args.port or settings.port))
    if args.command == "ask":
        from qwqbot.terminal import ask

        settings.require("aiml_api_key")
        question = " ".join(args.question)
        if args.file:
            try:
                settings, question = with_local_files(settings, question, args.file)
            except OSError as exc:
                print(f"qwqbot: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
                return EXIT_CONFIG
        return asyncio.run(ask(settings, question, show_reasoning=args.reasoning))
    if args.command == "check":
        from qwqbot.checks import run_checks

        results = asyncio.run(run_checks(settings, args.mode))
        for result in results:
            print(result.line())
        return 0 if all(r.ok for r in results) else 1
    if args.command == "forget":
        from qwqbot.store import open_store
        from qwqbot.store.controls import ControlStore

        store = open_store(settings.db_path)
        controls = ControlStore(store)
        counts = (controls.forget_user(args.user) if args.user
                  else controls.forget_channel(args.channel))
        store.close()
        print(forget_report(counts, user=args.user, channel=args.channel))
        return 0
    if args.command == "digest":
        from qwqbot.slack.digest_run import run_digest

        return asyncio.run(run_digest(settings, args.channel, dry_run=args.dry_run,
                                      hours=args.hours, tz=args.tz))
    raise AssertionError(args.command)  # argparse only lets known commands through


def print_manifest(source: str, *, http_url: str | None) -> int:
    from qwqbot.manifest import http_manifest

    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"qwqbot: cannot read {source} ({exc.strerror}): run this in the qwqbot checkout, "
              "or name the manifest with --from FILE", file=sys.stderr)
        return EXIT_CONFIG
    try:
        sys.stdout.write(text if http_url is None else http_manifest(text, http_url))
    except ValueError as exc:
        print(f"qwqbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
