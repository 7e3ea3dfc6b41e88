"""The Sender Rewriting Scheme: forward, reverse, tamper and age checks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courriel.delivery.srs import Srs

SRS = Srs(b"secret", max_age_days=21)
NOW = 1_800_000_000.0
DAY = 86400


def test_round_trip_and_case_insensitive_hash() -> None:
    forwarded = SRS.forward("alice@example.org", "monsite.be", now=NOW)
    assert forwarded.startswith("SRS0=") and forwarded.endswith("=example.org=alice@monsite.be")
    assert SRS.reverse(forwarded, now=NOW) == "alice@example.org"
    assert SRS.reverse(forwarded.upper().replace("@MONSITE.BE", "@monsite.be"), now=NOW) is not None


def test_tampered_expired_and_foreign_addresses_are_refused() -> None:
    forwarded = SRS.forward("alice@example.org", "monsite.be", now=NOW)
    assert SRS.reverse(forwarded.replace("alice", "mallory"), now=NOW) is None
    assert SRS.reverse(forwarded, now=NOW + 22 * DAY) is None
    assert SRS.reverse(forwarded, now=NOW + 20 * DAY) == "alice@example.org"
    assert Srs(b"other").reverse(forwarded, now=NOW) is None
    assert SRS.reverse("alice@example.org", now=NOW) is None
    assert SRS.reverse("SRS0=garbage@monsite.be", now=NOW) is None


def test_second_forwarder_uses_srs1_back_through_the_first() -> None:
    first = SRS.forward("alice@example.org", "first.be", now=NOW)
    second = Srs(b"second").forward(first, "monsite.be", now=NOW)
    assert second.startswith("SRS1=") and second.endswith("@monsite.be")
    back_to_first = Srs(b"second").reverse(second, now=NOW)
    assert back_to_first is not None and back_to_first.endswith("@first.be")
    assert SRS.reverse(back_to_first, now=NOW) == "alice@example.org"


def test_null_sender_is_never_rewritten() -> None:
    assert SRS.forward("", "monsite.be", now=NOW) == ""


@given(st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9-]{1,10}\.[a-z]{2,4}", fullmatch=True))
def test_any_address_round_trips(address: str) -> None:
    assert SRS.reverse(SRS.forward(address, "monsite.be", now=NOW), now=NOW) == address
