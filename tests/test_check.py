"""`qwqbot check` as a newcomer runs it, in a real subprocess: a copy of .env.example that was
never filled in, tokens Slack refuses, and a database it must look at without changing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlite_utils import Database

from qwqbot.store import open_store
from qwqbot.store.migrations import migrations

ROOT = Path(__file__).resolve().parent.parent


def check(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "qwqbot", "check", *args], env=full_env,
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_a_verbatim_copy_of_env_example_names_each_placeholder(tmp_path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    done = check(env={}, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == ("FAIL configuration: `qwqbot run` would stop at start in Socket Mode: "
                        "3 settings to fill in (.env.example says where each comes from)")
    assert [line.strip().split(":")[0] for line in lines[1:4]] == [
        "SLACK_BOT_TOKEN is still the placeholder from .env.example",
        "SLACK_APP_TOKEN is still the placeholder from .env.example",
        "AIML_API_KEY is still the placeholder from .env.example"]
    assert lines[4:8] == [
        "FAIL Slack: not checked: SLACK_BOT_TOKEN is still a placeholder",
        "FAIL Socket Mode: not checked: SLACK_APP_TOKEN is still a placeholder",
        "FAIL model: not checked: AIML_API_KEY is still a placeholder",
        f"ok  database: {tmp_path / 'qwqbot.db'} does not exist yet: `qwqbot run` will create it"]


def test_run_refuses_the_same_placeholders_in_the_same_words(tmp_path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    checked = check(env={}, cwd=tmp_path).stdout.splitlines()[1:4]
    run = subprocess.run([sys.executable, "-m", "qwqbot", "run"], cwd=tmp_path, text=True,
                         capture_output=True, timeout=60,
                         env={k: v for k, v in os.environ.items()
                              if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))})
    assert run.returncode == 2
    assert [line.strip() for line in run.stderr.splitlines()[1:]] == [
        line.strip() for line in checked]


def test_check_changes_nothing_where_nothing_is_configured(tmp_path):
    done = check(env={}, cwd=tmp_path)
    assert done.returncode == 1
    assert list(tmp_path.iterdir()) == []  # no qwqbot.db, no -wal, no -shm


def test_an_existing_database_is_read_not_migrated(tmp_path):
    path = tmp_path / "old.db"
    db = Database(path)
    every = [m.name for m in migrations.pending(db)]
    migrations.apply(db, stop_before=every[-1])  # a database from before the newest release
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    done = check(env={"QWQBOT_DB": str(path)}, cwd=tmp_path)
    assert f"ok  database: {path} opens; `qwqbot run` will upgrade it (1 migration)" in (
        done.stdout)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert [m.name for m in migrations.pending(Database(path))] == [every[-1]]
    open_store(path).close()  # what `run` does: the upgrade
    assert f"ok  database: {path} opens and is up to date" in check(
        env={"QWQBOT_DB": str(path)}, cwd=tmp_path).stdout


def test_a_file_that_is_not_a_database_fails_with_what_to_do(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but long enough to have a header " * 4)
    done = check(env={"QWQBOT_DB": str(path)}, cwd=tmp_path)
    assert f"FAIL database: {path} cannot be read: file is not a database" in done.stdout
    assert "move this one aside" in done.stdout


def test_a_database_in_a_missing_folder_fails(tmp_path):
    done = check(env={"QWQBOT_DB": str(tmp_path / "nope" / "q.db")}, cwd=tmp_path)
    assert (f"FAIL database: {tmp_path / 'nope' / 'q.db'} cannot be created: folder "
            f"{tmp_path / 'nope'} does not exist") in done.stdout
    assert not (tmp_path / "nope").exists()


def test_a_wrong_app_token_fails_check_as_it_would_fail_run(slack, model_server, tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_APP_TOKEN": "xapp-wrong",
           "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "test-key",
           "AIML_API_BASE_URL": model_server.base_url, "QWQBOT_DB": str(tmp_path / "q.db")}
    done = check(env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "ok  Slack: token accepted" in done.stdout
    assert ("FAIL Socket Mode: apps.connections.open answered invalid_auth: the token is wrong: "
            "copy the app-level token (xapp-...) again") in done.stdout
    assert "xapp-wrong" not in done.stdout


def test_a_bot_token_given_as_the_app_token_is_not_an_app_level_token(slack, model_server,
                                                                       tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": slack.api_url,
           "AIML_API_KEY": "test-key", "AIML_API_BASE_URL": model_server.base_url,
           "QWQBOT_DB": str(tmp_path / "q.db")}
    # The bot token in both variables: the parser sees the wrong prefix first.
    done = check(env={**env, "SLACK_APP_TOKEN": "xoxb-test-token"}, cwd=tmp_path)
    assert done.returncode == 2
    assert ("SLACK_APP_TOKEN: should start with 'xapp-' (got a bot token, xoxb-...: it belongs "
            "in SLACK_BOT_TOKEN)") in done.stderr


def test_http_mode_is_checked_without_socket_mode(slack, model_server, tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "shh",
           "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "test-key",
           "AIML_API_BASE_URL": model_server.base_url, "QWQBOT_DB": str(tmp_path / "q.db")}
    done = check(env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "ok  configuration: complete, the bot will run in HTTP mode" in done.stdout
    assert "Socket Mode:" not in done.stdout
    assert slack.calls_to("apps.connections.open") == []
    # --mode checks what `run --mode` would need
    forced = check("--mode", "socket", env=env, cwd=tmp_path)
    assert forced.returncode == 1
    assert "FAIL Socket Mode: not checked: SLACK_APP_TOKEN is not set" in forced.stdout


async def test_a_websocket_that_does_not_open_is_told_apart_from_a_bad_token():
    from aiohttp import web

    from qwqbot.checks import check_socket_mode
    from qwqbot.config import load_settings
    from tests.slack.harness import free_port

    nowhere = free_port()  # nothing listens there: the WebSocket is refused

    async def connections_open(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{nowhere}/link/?ticket=t1"})

    app = web.Application()
    app.router.add_post("/api/apps.connections.open", connections_open)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        settings = load_settings({"SLACK_APP_TOKEN": "xapp-1-A1-123",
                                  "SLACK_API_URL": f"http://127.0.0.1:{port}/api/"}, env_file=None)
        result = await check_socket_mode(settings)
    finally:
        await runner.cleanup()
    assert not result.ok
    assert result.detail.startswith("the token works, but the WebSocket to 127.0.0.1 did not open")
    assert "ticket" not in result.detail  # the one-time URL is never shown


def test_an_app_level_token_slack_refuses_for_its_type(slack, model_server, tmp_path):
    slack.fail_next("apps.connections.open", "not_allowed_token_type")
    env = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_APP_TOKEN": "xapp-test-token",
           "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "test-key",
           "AIML_API_BASE_URL": model_server.base_url, "QWQBOT_DB": str(tmp_path / "q.db")}
    done = check(env=env, cwd=tmp_path)
    assert ("FAIL Socket Mode: apps.connections.open answered not_allowed_token_type: this is "
            "not an app-level token: create one (xapp-...) with connections:write") in done.stdout
