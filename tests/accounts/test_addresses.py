"""Address and domain syntax (RFC 5321, IDN)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.accounts.addresses import (
    normalize_domain,
    parse_address,
    validate_hosted_local_part,
    validate_login,
)
from courriel.errors import ValidationError


def test_addresses_are_lower_cased_and_idn_encoded() -> None:
    assert str(parse_address("Info@MonSite.BE")) == "info@monsite.be"
    assert str(parse_address("<jean@bücher.be>")) == "jean@xn--bcher-kva.be"
    assert parse_address("jean@bücher.be").display == "jean@bücher.be"
    assert str(parse_address("o'brien+tag@example.org")) == "o'brien+tag@example.org"
    assert parse_address("info+news@monsite.be").without_tag() == parse_address("info@monsite.be")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "info",
        "@monsite.be",
        "info@",
        "in fo@monsite.be",
        ".info@monsite.be",
        "info.@monsite.be",
        "in..fo@monsite.be",
        "info@monsite",
        "info@-x.be",
        "a" * 65 + "@x.be",
        "info@monsite..be",
        'in"fo@x.be',
    ],
)
def test_invalid_addresses(bad: str) -> None:
    with pytest.raises(ValidationError):
        parse_address(bad)


def test_hosted_names_and_logins() -> None:
    assert validate_hosted_local_part("Info") == "info"
    with pytest.raises(ValidationError, match="sub-addresses"):
        validate_hosted_local_part("info+x")
    assert validate_login("Monsite0001") == "monsite0001"
    for bad in ("", "-x", "a b", "é", "x" * 65):
        with pytest.raises(ValidationError):
            validate_login(bad)


def test_domain_length_limits() -> None:
    label = "a" * 63
    assert normalize_domain(f"{label}.be") == f"{label}.be"
    with pytest.raises(ValidationError):
        normalize_domain("a" * 64 + ".be")
    with pytest.raises(ValidationError):
        normalize_domain(".".join([label] * 4) + ".be")


@given(st.text(max_size=80))
def test_parse_never_crashes(text: str) -> None:
    try:
        parsed = parse_address(text)
    except ValidationError:
        return
    assert "@" in str(parsed) and str(parse_address(str(parsed))) == str(parsed)
