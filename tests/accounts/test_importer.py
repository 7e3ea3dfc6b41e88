"""Batch create users: CSV and Virtualmin's format, with a per-line report."""

from __future__ import annotations

import pytest

from courriel.accounts.importer import import_mailboxes
from courriel.accounts.models import Mailbox
from courriel.errors import ValidationError
from tests.fixtures.accounts import STRONG, Customer


def test_csv_with_header(monsite: Customer) -> None:
    text = (
        "login,real_name,password,quota,addresses,forward_to\n"
        f"monsite0001,Info,{STRONG},1G,info contact,\n"
        f"monsite0002,Sales,,unlimited,sales,boss@gmail.com\n"
        f"monsite0003,Bad,{STRONG},lots,,\n"
        f"monsite0004,Dup,{STRONG},,info,\n"
    )
    reports = import_mailboxes(monsite.actor, monsite.domain, text)
    assert [(r.line, r.ok) for r in reports] == [(2, True), (3, True), (4, False), (5, False)]
    assert reports[1].password  # generated for a line without one, shown once
    assert "Invalid size" in reports[2].message and "already used" in reports[3].message
    info = Mailbox.objects.get(login="monsite0001")
    assert info.quota == 1024**3 and info.real_name == "Info"
    assert Mailbox.objects.get(login="monsite0002").forward_to == ["boss@gmail.com"]


def test_virtualmin_format_and_limit_checked_on_each_line(monsite: Customer) -> None:
    lines = [f"user{n}:User {n}:{STRONG}:0:1:1048576:user{n}-extra@monsite.be:" for n in range(12)]
    reports = import_mailboxes(monsite.actor, monsite.domain, "\n".join(lines))
    assert [r.ok for r in reports] == [True] * 10 + [False] * 2
    assert "allows 10 mailboxes" in reports[-1].message
    user = Mailbox.objects.get(login="user0")
    assert user.quota == 1024**3  # 1048576 one-kB blocks


def test_garbage_is_refused(monsite: Customer) -> None:
    with pytest.raises(ValidationError):
        import_mailboxes(monsite.actor, monsite.domain, "  \n")
    reports = import_mailboxes(monsite.actor, monsite.domain, "just-a-name\n")
    assert not reports[0].ok and "username:realname:password" in reports[0].message
    with pytest.raises(ValidationError, match="Unknown CSV column"):
        import_mailboxes(monsite.actor, monsite.domain, "login,shoe_size\nx,42\n")
