"""manifest.yml is what an admin pastes into "Create app from manifest", and `qwqbot manifest
--http URL` makes its HTTP-mode variant: both must be valid against Slack's published schema
(vendored in schemas/, so this runs in every clone) and ask for what the code uses."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from qwqbot.manifest import events_url, http_manifest

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "slack-app-manifest.schema.json"
URL = "https://qwqbot.example.com/slack/events"


@pytest.fixture(scope="module")
def text() -> str:
    return (ROOT / "manifest.yml").read_text()


@pytest.fixture(scope="module")
def manifest(text):
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_schema_ships_with_its_license():
    license_text = (ROOT / "schemas" / "slack-app-manifest.LICENSE").read_text()
    assert license_text.startswith("MIT License") and "Slack Technologies, LLC" in license_text


def test_manifest_is_valid_against_slacks_schema(manifest, validator):
    validator.validate(manifest)


def test_the_schema_catches_a_broken_manifest(manifest, validator):
    broken = copy.deepcopy(manifest)
    broken["settings"]["interactivity"]["request_url"] = "ftp://nope"
    del broken["display_information"]
    assert len(list(validator.iter_errors(broken))) == 2


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


def test_the_http_manifest_is_valid_and_differs_only_where_http_mode_needs(text, manifest,
                                                                            validator):
    made = yaml.safe_load(http_manifest(text, URL))
    validator.validate(made)
    assert made["settings"]["socket_mode_enabled"] is False
    assert made["settings"]["event_subscriptions"]["request_url"] == URL
    assert made["settings"]["interactivity"]["request_url"] == URL
    [command] = made["features"]["slash_commands"]
    assert command["url"] == URL
    # Undo those four and the rest is manifest.yml's, scopes and events included.
    made["settings"]["socket_mode_enabled"] = True
    del made["settings"]["event_subscriptions"]["request_url"]
    del made["settings"]["interactivity"]["request_url"]
    del command["url"]
    assert made == manifest


def test_the_http_manifest_keeps_the_comments_and_says_what_it_is(text):
    made = http_manifest(text, URL)
    assert made.startswith("# qwqbot's Slack app manifest for HTTP mode")
    assert f"#   qwqbot manifest --http {URL}\n" in made
    assert "- chat:write          # post answers" in made
    assert "Socket Mode is on" not in made  # manifest.yml's own header is replaced


def test_a_bare_address_gets_the_events_path():
    assert events_url("https://qwqbot.example.com") == URL
    assert events_url("https://qwqbot.example.com/") == URL
    assert events_url(URL) == URL
    assert events_url("https://host.example/custom/path") == "https://host.example/custom/path"
    with pytest.raises(ValueError, match="is not a URL"):
        events_url("qwqbot.example.com")


def test_a_manifest_of_another_shape_is_refused_not_half_changed(text):
    with pytest.raises(ValueError, match="no 'socket_mode_enabled: true' under settings"):
        http_manifest(text.replace("socket_mode_enabled: true", "socket_mode_enabled: false"), URL)
    with pytest.raises(ValueError, match="no '- command: /qwq'"):
        http_manifest(text.replace("- command: /qwq", "- command: /ask"), URL)


def test_qwqbot_manifest_prints_both(text, validator):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    run = [sys.executable, "-m", "qwqbot", "manifest"]
    plain = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert plain.returncode == 0 and plain.stdout == text
    made = subprocess.run([*run, "--http", "https://qwqbot.example.com"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    assert made.stdout == http_manifest(text, URL)
    validator.validate(yaml.safe_load(made.stdout))
    bad = subprocess.run([*run, "--http", "qwqbot.example.com"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and bad.stderr.startswith("qwqbot: 'qwqbot.example.com' is not a URL")


def test_procfile_runs_both_modes():
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines()
                 if line and not line.startswith("#"))
    assert lines["web"] == "qwqbot run --mode http --port $PORT"
    assert lines["worker"] == "qwqbot run --mode socket"
