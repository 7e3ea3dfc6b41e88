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


def _split_reference(block: bytes) -> tuple[bool, bool, bool, bool]:
    """The rules as first written: split at CRLF, look at what is left."""
    lines = block.split(b"\r\n")
    joined = b"".join(lines)
    return (
        b"\x00" in block,
        b"\r" in joined or b"\n" in joined,
        len(block) > MAX_LINE and max(map(len, lines)) > MAX_LINE,
        not block.isascii(),
    )


def test_the_checks_agree_with_splitting_every_line() -> None:
    """Differential: random blocks of every shape (runs around the line limit and the
    window size, bare and paired CR and LF at any place, NUL, 8-bit) give the same four
    verdicts as the split-based rules."""
    import random

    from courriel.delivery.message import ContentCheck

    rng = random.Random(20261205)
    pieces = [b"\r\n", b"\r", b"\n", b"\n\r", b"\x00", b"\xe9", b".", b"a"]
    lengths = [0, 1, 76, 499, 500, 501, 997, 998, 999, 1000, 1001, 1499, 1500, 2500]
    for _ in range(4000):
        parts = []
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.5:
                parts.append(b"x" * rng.choice(lengths) + b"\r\n")
            else:
                parts.append(rng.choice(pieces) * rng.randint(1, 3))
                parts.append(b"y" * rng.randint(0, 1100))
        block = b"".join(parts)
        check = ContentCheck()
        check.feed(block)
        got = (check.nul, check.bare_line_end, check.long_line, check.eight_bit)
        assert got == _split_reference(block), block[:200]
