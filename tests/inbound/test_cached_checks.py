"""The checks run on the event loop when every answer they need is cached
(`courriel.cachedonly`), else in a worker thread: both ways give the same
Authentication-Results, and an answer that is not cached is never looked up inline,
even when a library catches the miss and makes a result of its own out of it."""

from __future__ import annotations

import asyncio

import pytest

from courriel.accounts.routing_cache import cache
from courriel.cachedonly import attempt, cached_or_thread
from courriel.config import get_config
from courriel.dns import resolver
from courriel.inbound.checks import authenticate
from courriel.inbound.sender_policy import check_mailfrom
from courriel.inbound.signatures import verify_dkim
from tests.fixtures.nsd import PrivateNSD
from tests.inbound.conftest import EXAMPLE_IP, QUARANTINE_IP, letter, new_key, signed

CHECKS = {"authserv_id": "mx.courriel.test", "is_ours": lambda domain: False}


def signed_by_example(nsd: PrivateNSD, subject: str) -> bytes:
    """Start `nsd` with the zones below; a message from alice@example.org, signed."""
    pem, public = new_key()
    nsd.zone(
        "example.org",
        [
            nsd.txt("@", f"v=spf1 ip4:{EXAMPLE_IP} -all"),
            nsd.txt("s1._domainkey", f"v=DKIM1; k=rsa; p={public}"),
            nsd.txt("_dmarc", "v=DMARC1; p=reject"),
            # The HELO name's SPF is looked up too: a record (not SPF, so the result is
            # still "none") keeps that answer cached for its TTL, where its absence
            # would be for the zone's negative TTL (1 s) only.
            nsd.txt("mail", "site-verification=courriel-test"),
        ],
    )
    nsd.zone(
        "quarantine.example",
        [nsd.txt("@", f"v=spf1 ip4:{QUARANTINE_IP} -all"), nsd.txt("_dmarc", "v=DMARC1; p=none")],
    )
    nsd.start()
    return signed(letter("alice@example.org", "info@monsite.be", subject), pem)


FROM_EXAMPLE = {"client_ip": EXAMPLE_IP, "helo": "mail.example.org", "sender": "alice@example.org"}


def test_cached_answers_give_the_results_the_dns_gave(nsd: PrivateNSD) -> None:
    message = signed_by_example(nsd, "le club")
    client = FROM_EXAMPLE

    # Nothing cached: the inline attempt gives up. pyspf turns the miss into a
    # "temperror" of its own and dkimpy into a failed signature: neither may count.
    spf_args = (EXAMPLE_IP, "alice@example.org", "mail.example.org")
    assert attempt(check_mailfrom, *spf_args) == (False, None)
    assert attempt(verify_dkim, message) == (False, None)
    assert attempt(authenticate, message, **client, **CHECKS) == (False, None)

    from_dns = authenticate(message, **client, **CHECKS)  # the thread path: asks nsd
    header = from_dns.header()
    for verdict in (b"spf=pass", b"dkim=pass", b"dmarc=pass"):
        assert verdict in header

    assert attempt(check_mailfrom, *spf_args) == (True, from_dns.spf)
    done, from_cache = attempt(authenticate, message, **client, **CHECKS)
    assert done and from_cache is not None
    assert from_cache.header() == header

    # The DNS server gone: cached answers still answer inline, the same way...
    nsd.stop()
    done, while_down = attempt(authenticate, message, **client, **CHECKS)
    assert done and while_down is not None and while_down.header() == header
    # ...and a sender whose records were never asked for goes to the thread path,
    # where the DNS failure is a temporary error (451 for the SMTP client).
    other = letter("bob@quarantine.example", "info@monsite.be", "pas en cache")
    stranger = {"client_ip": QUARANTINE_IP, "helo": "", "sender": "bob@quarantine.example"}
    assert attempt(authenticate, other, **stranger, **CHECKS) == (False, None)
    report = authenticate(other, **stranger, **CHECKS)
    assert report.spf.result == "temperror"
    assert [r.result for r in report.dmarc] == ["temperror"]


def test_the_event_loop_entry_point_takes_the_thread_when_it_must(nsd: PrivateNSD) -> None:
    message = signed_by_example(nsd, "deux chemins")
    client = FROM_EXAMPLE

    async def twice() -> tuple[bytes, bytes]:
        first = await cached_or_thread(authenticate, message, **client, **CHECKS)  # thread
        second = await cached_or_thread(authenticate, message, **client, **CHECKS)  # inline
        return first.header(), second.header()

    first, second = asyncio.run(twice())
    assert first == second and b"dkim=pass" in first and b"spf=pass" in first


def test_a_routing_answer_not_cached_is_not_computed_inline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(get_config().smtp, "routing_cache_seconds", 60)
    cache.clear()
    computed: list[str] = []

    def load() -> str:
        computed.append("database")
        return "answer"

    key = ("tests.cachedonly", 1)
    assert attempt(cache.get, key, load) == (False, None)
    assert computed == []  # the database was not asked on the event loop
    assert cache.get(key, load) == "answer"
    assert attempt(cache.get, key, load) == (True, "answer")
    assert computed == ["database"]
    cache.clear()


def test_an_error_of_the_work_itself_is_raised_not_retried() -> None:
    def broken() -> None:
        raise ValueError("a bug, not a miss")

    with pytest.raises(ValueError, match="a bug"):
        attempt(broken)


def test_an_spf_verdict_is_kept_only_while_its_dns_answers_are(nsd: PrivateNSD) -> None:
    """A client sending again for the same sender is not evaluated again while the
    answers its verdict rested on are cached; a changed record is seen as soon as the
    cache lets it go (TTL), and a failure or a DNS error is never kept."""
    nsd.zone("example.org", [nsd.txt("@", f"v=spf1 ip4:{EXAMPLE_IP} -all")])
    nsd.start()
    spf_args = (EXAMPLE_IP, "alice@example.org", "mail.example.org")
    first = check_mailfrom(*spf_args)
    assert first.result == "pass"
    assert check_mailfrom(*spf_args) is first  # kept, not evaluated again

    nsd.zone("example.org", [nsd.txt("@", "v=spf1 -all")])  # the domain changes its mind
    nsd.reload()
    assert check_mailfrom(*spf_args) is first  # the cached answer is still valid
    resolver.clear_cache()  # as its TTL running out does
    refused = check_mailfrom(*spf_args)
    assert refused.result == "fail"
    assert check_mailfrom(*spf_args) is not refused  # a failure is evaluated each time

    nsd.stop()
    resolver.clear_cache()
    assert check_mailfrom(*spf_args).result == "temperror"
    nsd.start()
    assert check_mailfrom(*spf_args).result == "fail"
