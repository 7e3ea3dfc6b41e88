"""Static whitelists in postgrey's formats, and the shipped list of large senders."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.errors import ValidationError
from courriel.greylist.whitelist import (
    CLIENT,
    RECIPIENT,
    SENDER,
    Matcher,
    Rule,
    clean_value,
    default_rules,
    parse_postgrey,
)

CLIENTS = """\
# a comment line
192.0.2.7
198.51.100.0/24   # trailing comment
203.0.113
10.20
2001:db8:abcd::/48
mail.example.org
/^mx\\d+\\.mailer\\.example\\.net$/
163.com
"""

RECIPIENTS = """\
postmaster@
info@monsite.be
autresite.be
/^list-.*@monsite\\.be$/
"""


def matcher(text: str, kind: str) -> Matcher:
    rules, errors = parse_postgrey(text, kind, "test")
    assert errors == []
    return Matcher.build(rules)


@pytest.mark.parametrize(
    ("address", "name", "hit"),
    [
        ("192.0.2.7", None, "192.0.2.7"),
        ("192.0.2.8", None, None),
        ("198.51.100.250", None, "198.51.100.0/24"),
        ("203.0.113.9", None, "203.0.113.0/24"),  # partial address: a /24
        ("10.20.30.40", None, "10.20.0.0/16"),  # two parts: a /16
        ("::ffff:203.0.113.9", None, "203.0.113.0/24"),
        ("2001:db8:abcd:1::25", None, "2001:db8:abcd::/48"),
        ("2001:db8:abce::25", None, None),
        ("198.18.0.1", "mail.example.org", "mail.example.org"),
        ("198.18.0.1", "out1.mail.example.org", "mail.example.org"),  # subdomain
        ("198.18.0.1", "badmail.example.org", None),  # not a subdomain
        ("198.18.0.1", "MX12.Mailer.Example.NET", "/^mx\\d+\\.mailer\\.example\\.net$/"),
        ("198.18.0.1", "mx12.mailer.example.net.evil.com", None),
        ("198.18.0.1", "smtp.163.com", "163.com"),
        ("198.18.0.1", None, None),
    ],
)
def test_client_entries(address: str, name: str | None, hit: str | None) -> None:
    rule = matcher(CLIENTS, CLIENT).client(address, name)
    assert (rule.value if rule else None) == hit


@pytest.mark.parametrize(
    ("recipient", "hit"),
    [
        ("postmaster@monsite.be", "postmaster@"),
        ("postmaster@anything.example", "postmaster@"),
        ("info@monsite.be", "info@monsite.be"),
        ("contact@monsite.be", None),
        ("someone@autresite.be", "autresite.be"),
        ("someone@sub.autresite.be", "autresite.be"),
        ("someone@notautresite.be", None),
        ("list-users@monsite.be", "/^list-.*@monsite\\.be$/"),
    ],
)
def test_recipient_entries(recipient: str, hit: str | None) -> None:
    rule = matcher(RECIPIENTS, RECIPIENT).recipient(recipient)
    assert (rule.value if rule else None) == hit


def test_sender_entries() -> None:
    rules = [
        Rule(SENDER, clean_value(SENDER, "Partner.example")),
        Rule(SENDER, clean_value(SENDER, "billing@supplier.example")),
        Rule(SENDER, clean_value(SENDER, "/^alerts-.*@monitoring\\.example$/")),
    ]
    m = Matcher.build(rules)
    assert m.sender("anyone@partner.example").value == "partner.example"  # type: ignore[union-attr]
    assert m.sender("anyone@eu.partner.example") is not None
    assert m.sender("billing@supplier.example") is not None
    assert m.sender("sales@supplier.example") is None
    assert m.sender("alerts-db@monitoring.example") is not None
    assert m.sender("") is None


@pytest.mark.parametrize(
    ("kind", "value", "clean"),
    [
        (CLIENT, " 192.0.2.7 ", "192.0.2.7"),
        (CLIENT, "192.0.2.7/24", "192.0.2.0/24"),
        (CLIENT, "2001:DB8::1", "2001:db8::1"),
        (CLIENT, "Mail.Example.ORG.", "mail.example.org"),
        (CLIENT, "/^MX\\d+$/", "/^MX\\d+$/"),
        (SENDER, "Example.org", "example.org"),
        (RECIPIENT, "Postmaster@", "postmaster@"),
    ],
)
def test_values_are_cleaned(kind: str, value: str, clean: str) -> None:
    assert clean_value(kind, value) == clean


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (CLIENT, ""),
        (CLIENT, "two words"),
        (CLIENT, "192.0.2.0/99"),
        (CLIENT, "2001:db8::zz"),
        (CLIENT, "bad_host!.example"),
        (CLIENT, "/unclosed(group/"),
        (SENDER, "someone@"),
        (RECIPIENT, "a@b@c"),
        ("colour", "red"),
        (CLIENT, "x" * 301),
    ],
)
def test_invalid_values_say_what_is_expected(kind: str, value: str) -> None:
    with pytest.raises(ValidationError) as error:
        clean_value(kind, value)
    assert error.value.message


def test_invalid_lines_are_reported_with_their_number() -> None:
    rules, errors = parse_postgrey("192.0.2.1\nfoo bar\n# ok\n300.1.1.1/8\n", CLIENT, "t")
    assert [r.value for r in rules] == ["192.0.2.1"]
    assert errors[0].startswith("line 2:") and errors[1].startswith("line 4:")


def test_comments_above_entries_describe_them() -> None:
    text = "# header\n\n# Google\ngoogle.com\n# Yahoo\nyahoo.com\nyahoodns.net\n\naol.com\n"
    rules, _ = parse_postgrey(text, CLIENT, "t")
    assert [(r.value, r.comment) for r in rules] == [
        ("google.com", "Google"),
        ("yahoo.com", "Yahoo"),
        ("yahoodns.net", "Yahoo"),
        ("aol.com", ""),
    ]


def test_shipped_default_list_covers_large_senders() -> None:
    rules = default_rules()
    m = Matcher.build(rules)
    assert all(r.source == "default" for r in rules)
    for name in ("mail-ed1-f41.google.com", "mail-db8eur05on2100.outbound.protection.outlook.com"):
        assert m.client("198.18.0.1", name) is not None, name
    assert m.recipient("postmaster@monsite.be") is not None
    assert m.recipient("abuse@monsite.be") is not None
    assert m.client("198.18.0.1", "mail.spammer.example") is None


@pytest.mark.parametrize("name", ["whitelist_clients", "whitelist_recipients"])
def test_debians_postgrey_files_parse_completely(name: str) -> None:
    """A provider moving from postgrey imports its files unchanged."""
    path = Path("/etc/postgrey") / name
    if not path.exists():
        pytest.skip("postgrey is not installed (scripts/setup installs it)")
    kind = RECIPIENT if "recipients" in name else CLIENT
    rules, errors = parse_postgrey(path.read_text(), kind, name)
    assert errors == [] and len(rules) > 1
