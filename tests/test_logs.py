import logging

from qwqbot.logs import RedactingFilter, redact


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
