"""`qwqbot manifest --http URL`: the HTTP-mode variant of manifest.yml, made from it.

manifest.yml is written for Socket Mode, which needs no public URL. HTTP mode differs from it
in four places, all on the one path the bot serves (``POST /slack/events``): Socket Mode off, and
the URL as the request URL of event subscriptions, of interactivity and of the ``/qwq`` command
(https://docs.slack.dev/reference/app-manifest). Editing those by hand is easy to get wrong, so
this derives the variant from the file itself. It edits the text rather than re-serialising
parsed YAML, so the comments explaining each scope stay, and it needs no YAML library at run
time. Pure: text in, text out; a manifest whose shape it does not recognise is refused
(ValueError) rather than half changed, and tests/test_manifest.py checks the result against
Slack's schema.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

EVENTS_PATH = "/slack/events"

HTTP_HEADER = """\
# qwqbot's Slack app manifest for HTTP mode, made from manifest.yml by
#   qwqbot manifest --http {url}
# Paste it into https://api.slack.com/apps -> Create New App -> From a manifest (or into an
# existing app's App Manifest page). Slack then sends events, the /qwq command and button
# presses to that URL, signed with the app's Signing Secret: run the bot with
# SLACK_SIGNING_SECRET set, as `qwqbot run --mode http`.
"""


def events_url(url: str) -> str:
    """The request URL for ``url``: a bare ``https://host`` gets the path the bot serves."""
    parts = urlparse(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not a URL: give the bot's public address, such as "
                         f"https://qwqbot.example.com (or the full https://...{EVENTS_PATH})")
    if parts.path in ("", "/"):
        return f"{parts.scheme}://{parts.netloc}{EVENTS_PATH}"
    return url.strip()


def _add_after(text: str, pattern: str, added: str, what: str) -> str:
    """``text`` with ``added`` after the one match of ``pattern`` (a regex of whole lines)."""
    new, count = re.subn(pattern, lambda m: m.group(0) + added, text, count=1, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"manifest.yml has no {what}: update qwqbot/manifest.py to match it")
    return new


def http_manifest(socket_manifest: str, url: str) -> str:
    """``socket_manifest`` (manifest.yml's text) with Socket Mode off and ``url`` (see
    ``events_url``) wherever Slack needs a request URL."""
    target = events_url(url)
    body = re.sub(r"\A(?:#[^\n]*\n)+", "", socket_manifest)  # its header speaks of Socket Mode
    body, count = re.subn(r"^  socket_mode_enabled: true$", "  socket_mode_enabled: false", body,
                          count=1, flags=re.MULTILINE)
    if count != 1:
        raise ValueError("manifest.yml has no 'socket_mode_enabled: true' under settings: "
                         "update qwqbot/manifest.py to match it")
    body = _add_after(body, r"^  event_subscriptions:\n", f"    request_url: {target}\n",
                      "'event_subscriptions:' under settings")
    body = _add_after(body, r"^  interactivity:\n    is_enabled: true\n",
                      f"    request_url: {target}\n", "'interactivity: is_enabled: true' under settings")
    body = _add_after(body, r"^    - command: /qwq\n", f"      url: {target}\n",
                      "'- command: /qwq' under features.slash_commands")
    return HTTP_HEADER.format(url=target) + body
