"""The content checks behind 554 5.6.0 / 5.6.1, at their exact boundaries."""

from __future__ import annotations

import pytest

from courriel.delivery.message import MAX_LINE, check_content

HEAD = b"From: a@example.org\r\nSubject: t\r\n\r\n"


def refusal(content: bytes, eight_bit: bool = False) -> str | None:
    outcome = check_content(content, eight_bit_declared=eight_bit)
    return None if outcome is None else f"{outcome.code} {outcome.enhanced}"


@pytest.mark.parametrize(
    "body",
    [b"a\rb", b"a\nb", b"end\r", b"\nstart", b"a\r\r\nb", b"a\r\n\nb", b"\n\r"],
    ids=["cr", "lf", "trailing-cr", "leading-lf", "cr-before-crlf", "lf-after-crlf", "lf-cr"],
)
def test_bare_cr_or_lf_anywhere_is_refused(body: bytes) -> None:
    assert refusal(HEAD + body) == "554 5.6.0"


@pytest.mark.parametrize("last", [True, False], ids=["last-line", "middle-line"])
def test_line_length_limit_is_exactly_998(last: bool) -> None:
    tail = b"" if last else b"\r\nafter\r\n"
    assert refusal(HEAD + b"x" * MAX_LINE + tail) is None
    assert refusal(HEAD + b"x" * (MAX_LINE + 1) + tail) == "554 5.6.0"


def test_good_message_passes_and_8bit_needs_declaring() -> None:
    assert refusal(HEAD + b"line\r\n" * 5000) is None
    assert refusal(HEAD + "héhé".encode()) == "554 5.6.1"
    assert refusal(HEAD + "héhé".encode(), eight_bit=True) is None
