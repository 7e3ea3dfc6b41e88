"""Triplet normalisation: retries of one message from a real sending server must map
to the same triplet, different messages to different ones."""

from __future__ import annotations

import pytest

from courriel.greylist.normalise import (
    NULL_SENDER,
    client_network,
    normalise_recipient,
    normalise_sender,
    triplet_key,
)


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.0.2.77", "192.0.2.0/24"),
        ("192.0.2.1", "192.0.2.0/24"),
        ("198.51.100.200", "198.51.100.0/24"),
        ("2001:db8:1:2:aaaa::5", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.9", "192.0.2.0/24"),  # IPv4-mapped counts as IPv4
        ("[192.0.2.9]", "192.0.2.0/24"),
        ("IPv6:2001:db8::1", "2001:db8::/64"),
    ],
)
def test_client_addresses_are_grouped_by_network(address: str, network: str) -> None:
    assert client_network(address) == network


def test_prefixes_are_configurable() -> None:
    assert client_network("192.0.2.77", 32, 64) == "192.0.2.77/32"
    assert client_network("192.0.2.77", 16, 64) == "192.0.0.0/16"
    assert client_network("2001:db8:1:2::5", 24, 48) == "2001:db8:1::/48"
    assert client_network("2001:db8:1:2::5", 24, 128) == "2001:db8:1:2::5/128"


@pytest.mark.parametrize("garbage", ["", "not-an-ip", "999.1.1.1", "192.0.2", "unknown"])
def test_garbage_client_address_is_refused(garbage: str) -> None:
    with pytest.raises(ValueError):
        client_network(garbage)


@pytest.mark.parametrize(
    ("sender", "normal"),
    [
        ("Alice@Example.ORG", "alice@example.org"),
        ("<alice@example.org>", "alice@example.org"),
        # sub-address tags (mailing lists, per-message bounce addresses)
        ("alice+news@example.org", "alice@example.org"),
        ("alice+1234-5678@example.org", "alice@example.org"),
        # VERP-like numbers become '#'
        ("bounce-12345@lists.example.org", "bounce-#@lists.example.org"),
        ("bounce-12345-67@lists.example.org", "bounce-#-#@lists.example.org"),
        ("news.2024.11@example.org", "news.#.#@example.org"),
        # long hexadecimal message identifiers
        ("bounces-4f3a9c0d21e8@mailer.example.com", "bounces-#@mailer.example.com"),
        ("deadbeefcafe@example.com", "deadbeefcafe@example.com"),  # no digit: a name
        # BATV: prvs=tag=local, and the swapped order some senders use
        ("prvs=1234abcdef=alice@example.org", "alice@example.org"),
        ("PRVS=0123456789=alice@example.org", "alice@example.org"),
        ("prvs=alice=1234abcdef@example.org", "alice@example.org"),
        ("msprvs1=19012abcdE=bounces-alice@example.org", "bounces-alice@example.org"),
        ("btv1==8a1b2c3d4e5==alice@example.org", "alice@example.org"),
        # SRS: the forwarder's hash and timestamp change per message
        ("SRS0=HhH1=TT=example.org=alice@forwarder.net", "srs0=example.org=alice@forwarder.net"),
        ("srs0+AbCd=x7=example.org=alice@forwarder.net", "srs0=example.org=alice@forwarder.net"),
        (
            "SRS1=XyZ1=first.net==HhH1=TT=example.org=alice@second.net",
            "srs1=first.net=example.org=alice@second.net",
        ),
        # null sender
        ("", NULL_SENDER),
        ("<>", NULL_SENDER),
        ("  ", NULL_SENDER),
        # no domain: kept, lower-cased
        ("MAILER-DAEMON", "mailer-daemon"),
    ],
)
def test_sender_is_reduced_to_a_stable_form(sender: str, normal: str) -> None:
    assert normalise_sender(sender) == normal


def test_two_retries_with_fresh_tags_share_one_triplet() -> None:
    first = triplet_key(
        client_network("192.0.2.10"),
        normalise_sender("SRS0=abcd=T1=example.org=bounce-1001@fwd.net"),
        normalise_recipient("Info@monsite.be"),
    )
    retry = triplet_key(
        client_network("192.0.2.11"),
        normalise_sender("SRS0=wxyz=T2=example.org=bounce-1002@fwd.net"),
        normalise_recipient("info+x@monsite.be"),
    )
    other = triplet_key(
        client_network("192.0.3.11"),
        normalise_sender("SRS0=wxyz=T2=example.org=bounce-1002@fwd.net"),
        normalise_recipient("info@monsite.be"),
    )
    assert first == retry != other
    assert -(2**63) <= first < 2**63  # fits PostgreSQL's bigint


@pytest.mark.parametrize(
    ("recipient", "normal"),
    [
        ("Info@MonSite.be", "info@monsite.be"),
        ("<info@monsite.be>", "info@monsite.be"),
        ("info+news@monsite.be", "info@monsite.be"),
        ("info@exämple.be", "info@xn--exmple-cua.be"),
        ("postmaster", "postmaster"),
    ],
)
def test_recipient_is_lower_cased_without_tag(recipient: str, normal: str) -> None:
    assert normalise_recipient(recipient) == normal


def test_huge_addresses_are_truncated_not_refused() -> None:
    assert len(normalise_sender("a" * 5000 + "@example.org")) == 320
    assert len(normalise_recipient("b" * 5000 + "@monsite.be")) == 320
