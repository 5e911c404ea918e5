import io
import logging

import pytest

from qwqbot.errors import ModelAuthError
from qwqbot.logs import QUIET_AT_INFO, RedactingFilter, log_handler, redact, setup_logging
from qwqbot.model.client import ModelClient, RetryPolicy
from tests.fakes.model_server import error


def test_redact_masks_tokens_and_bearer_keys():
    text = "token xoxb-123-456-abc app xapp-1-A1-xyz header Authorization: Bearer sk-live-999"
    out = redact(text)
    assert "123-456" not in out and "A1-xyz" not in out and "sk-live-999" not in out
    assert "xoxb-***" in out and "xapp-***" in out and "Bearer ***" in out


def test_filter_rewrites_records_with_secret_args(caplog):
    logger = logging.getLogger("qwqbot.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="qwqbot.test"):
        logger.info("calling with %s", "xoxb-999-secret")
    logger.filters.clear()
    assert "999-secret" not in caplog.text
    assert "xoxb-***" in caplog.text


@pytest.fixture
def logged():
    """What the production handler writes for records of one logger."""
    out = io.StringIO()
    logger = logging.getLogger("qwqbot.test.logged")
    handler = log_handler(out)
    logger.addHandler(handler)
    yield logger, out
    logger.removeHandler(handler)


def test_tracebacks_and_their_causes_are_masked(logged):
    logger, out = logged
    try:
        try:
            raise OSError("sent Authorization: Bearer sk-live-cause")
        except OSError as exc:
            raise RuntimeError("posting with xoxb-1-top-secret failed") from exc
    except RuntimeError:
        logger.exception("it failed")
    text = out.getvalue()
    assert "The above exception was the direct cause" in text  # the whole chain is there
    assert "sk-live-cause" not in text and "top-secret" not in text
    assert "Bearer ***" in text and "xoxb-***" in text


@pytest.mark.parametrize("echoed", [False, True], ids=["key refused", "key echoed back"])
async def test_a_401_logged_with_its_traceback_contains_no_key(model_server, logged, echoed):
    logger, out = logged
    key = "sk-live-0123456789abcdef"  # no shape the pattern filter knows
    if echoed:  # a provider quoting the key it refuses
        model_server.api_key = key
        model_server.enqueue(error(401, {"error": {"message": f"Incorrect API key: {key}"}}))
    client = ModelClient(base_url=model_server.base_url, api_key=key, model="Qwen/QwQ-32B",
                         retry=RetryPolicy(max_retries=0))
    try:
        await client.complete([{"role": "user", "content": "Hi?"}])
    except ModelAuthError:
        logger.exception("answer failed")
    finally:
        await client.aclose()
    text = out.getvalue()
    assert "ModelAuthError: The model server rejected the API key (401)." in text
    assert ("Incorrect API key: ***" in text) is echoed
    assert key not in text and "0123456789abcdef" not in text


@pytest.fixture
def restore_logging():
    """setup_logging configures the process's root logger: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_AT_INFO}
    bolt_app = logging.getLogger("slack_bolt.AsyncApp")
    bolt_level = bolt_app.level
    yield
    root.handlers[:], root.level = handlers, level
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)
    bolt_app.setLevel(bolt_level)


def _log_the_libraries() -> None:
    # Bolt sets its own loggers to the root's level when it makes them; do as it does.
    logging.getLogger("slack_bolt.AsyncApp").setLevel(logging.getLogger().level)
    logging.getLogger("apscheduler.scheduler").info("Adding job tentatively -- it will be "
                                                    "properly scheduled when the scheduler starts")
    logging.getLogger("slack_bolt.AsyncApp").info("A new session (s_1) has been established")
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed")
    logging.getLogger("qwqbot.slack.server").info("qwqbot running as @qwqbot in Socket Mode")


def test_libraries_bookkeeping_is_quiet_at_the_default_level(restore_logging, capsys):
    setup_logging("INFO")
    _log_the_libraries()
    err = capsys.readouterr().err
    assert "Adding job tentatively" not in err and "A new session" not in err
    assert "WARNING apscheduler.executors.default: Run time of job was missed" in err
    assert "INFO qwqbot.slack.server: qwqbot running as @qwqbot in Socket Mode" in err


def test_at_debug_the_libraries_say_everything(restore_logging, capsys):
    setup_logging("DEBUG")
    _log_the_libraries()
    err = capsys.readouterr().err
    assert "INFO apscheduler.scheduler: Adding job tentatively" in err
    assert "INFO slack_bolt.AsyncApp: A new session (s_1) has been established" in err
