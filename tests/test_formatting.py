import pytest

from qwqbot.formatting import format_tokens


@pytest.mark.parametrize(("n", "text"), [
    (0, "0"), (999, "999"), (1234, "1,234"), (999_999, "999,999"), (1_000_000, "1.0M"),
    (1_234_567, "1.2M"), (12_345_678, "12.3M"), (999_949_999, "999.9M"), (999_950_000, "1.0B"),
    (2_500_000_000, "2.5B"),
])
def test_format_tokens(n, text):
    assert format_tokens(n) == text
