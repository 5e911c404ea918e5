"""manifest.yml is what an admin pastes into "Create app from manifest": it must be valid
against Slack's published schema and ask for what the code uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# shared/ sits beside the checkout (CI, the main clone); a worktree elsewhere names it with
# QWQBOT_SHARED_DIR (e.g. QWQBOT_SHARED_DIR=/work/shared).
SHARED = Path(os.environ.get("QWQBOT_SHARED_DIR") or ROOT.parent / "shared")
SCHEMA = SHARED / "schemas" / "slack-app-manifest.schema.json"


@pytest.fixture(scope="module")
def manifest():
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


@pytest.mark.skipif(not SCHEMA.exists(), reason="shared/schemas is not beside this checkout")
def test_manifest_is_valid_against_slacks_schema(manifest):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(manifest, schema)


def test_manifest_has_what_the_bot_uses(manifest):
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.groups", "message.im",
            "message.mpim"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # every event's scope, and the Web API methods the bot calls
    assert {"app_mentions:read", "channels:history", "groups:history", "im:history",
            "mpim:history", "chat:write", "users:read", "files:write", "files:read",
            "commands"} <= scopes
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == ["/qwq"]


def test_procfile_runs_both_modes():
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines())
    assert lines["web"] == "qwqbot run --mode http --port $PORT"
    assert lines["worker"] == "qwqbot run --mode socket"
