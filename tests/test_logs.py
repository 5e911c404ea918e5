import io
import logging

import pytest

from qwqbot.errors import ModelAuthError
from qwqbot.logs import RedactingFilter, log_handler, redact
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
