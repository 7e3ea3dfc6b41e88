"""SORT's sent dates: the fast path that reads the first Date field straight from the
header bytes (the first SORT of a big folder does it for every message) agrees with
the general path on every header, odd ones included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courriel.access.imap.sort import _sent_date, _sent_seconds
from courriel.mailstore.headers import field_values


def slow(header: bytes) -> int:
    text = _sent_date(field_values(header, "date"))
    return int(text) if text else -1


CASES = [
    b"From: a@b\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nbody",
    b"Date: 1 Jan 2024 10:00 -0230\r\nSubject: x\r\n\r\n",
    b"DATE:Tue, 31 Dec 2024 23:59:59 +0000 (UTC)\r\n\r\n",
    b"Date: Mon, 1 Jan 2024\r\n 10:00:00 +0100\r\n\r\n",  # folded
    b"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n (a comment on the next line)\r\n\r\n",
    b"Subject: none\r\n\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n",  # only in the body
    b"Subject: x\n\nDate: Mon, 1 Jan 2024 10:00:00 +0100\n",
    b"\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n",  # empty header
    b"Date: yesterday\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\n",  # first one counts
    b"Date: Mon, 1 Foo 2024 10:00:00 +0100\r\n\r\n",
    b"Date: Mon, 31 Feb 2024 10:00:00 +0100\r\n\r\n",
    b"Date: Mon, 1 Jan 2024 10:00:00 GMT\r\n\r\n",
    b"X-Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\n",
    b"Date : Mon, 1 Jan 2024 10:00:00 +0100\n\n",
    b"",
]


def test_the_usual_and_the_odd_dates_read_the_same_both_ways() -> None:
    for header in CASES:
        assert _sent_seconds(header) == slow(header), header


@given(
    st.lists(
        st.sampled_from(
            [
                b"Date: Mon, 1 Jan 2024 10:00:00 +0100",
                b"Date: 2 Feb 2025 1:02 -0000",
                b"date:Sun, 9 Mar 2025 12:00:00 +1400 (x)",
                b"Date: garbage",
                b"Date: Mon, 1 Jan 2024",
                b" 10:00:00 +0100",
                b"Subject: hello",
                b"",
                b"Received: from x; Mon, 1 Jan 2024 10:00:00 +0100",
            ]
        ),
        max_size=6,
    ),
    st.sampled_from([b"\r\n", b"\n"]),
)
def test_any_header_reads_the_same_both_ways(lines: list[bytes], newline: bytes) -> None:
    header = newline.join(lines) + newline + newline + b"Date: Tue, 2 Jan 2024 10:00:00 +0000"
    assert _sent_seconds(header) == slow(header)
