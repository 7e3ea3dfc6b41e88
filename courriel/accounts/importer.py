"""Batch creation of mailboxes ("Batch create users") from pasted or uploaded text.

Two formats, recognised automatically:
- CSV with a header line: login, real_name, password, quota, addresses, forward_to,
  disabled, primary_enabled (aliases: username, realname, pass, extras, forwards...);
- Virtualmin's batch format, so that providers can move over unchanged:
  `username:realname:password:ftp:email:quota:extras:forwards` (quota in 1 kB blocks,
  extras and forwards comma-separated).

Each line is created on its own, with every rule and the plan limit checked on it;
the report says line by line what was created and why a line was refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor
from courriel.accounts.services import caps
from courriel.accounts.services.mailboxes import UNSET, _Unset, create_mailbox
from courriel.errors import CourrielError, ValidationError
from courriel.i18n import gettext as _
from courriel.units import parse_size

MAX_LINES = caps.IMPORT_LINES

_COLUMNS = {
    "login": "login",
    "username": "login",
    "user": "login",
    "real_name": "real_name",
    "realname": "real_name",
    "name": "real_name",
    "password": "password",
    "pass": "password",
    "quota": "quota",
    "addresses": "addresses",
    "additional_addresses": "addresses",
    "extras": "addresses",
    "extra": "addresses",
    "forward_to": "forward_to",
    "forwards": "forward_to",
    "forward": "forward_to",
    "disabled": "disabled",
    "primary_enabled": "primary_enabled",
    "email": "primary_enabled",
}
_TRUE = {"1", "yes", "true", "y", "on", "oui", "ja"}


@dataclass
class ImportRow:
    line: int
    login: str | None
    real_name: str = ""
    password: str | None = None
    quota: int | _Unset | None = UNSET
    addresses: list[str] = field(default_factory=list)
    forward_to: list[str] = field(default_factory=list)
    disabled: bool = False
    primary_enabled: bool = True


@dataclass
class LineReport:
    line: int
    login: str
    ok: bool
    message: str
    password: str | None = None  # generated when the line had none, shown once


def _split_list(text: str) -> list[str]:
    return [
        item.strip() for item in text.replace(";", ",").replace(" ", ",").split(",") if item.strip()
    ]


def _flag(text: str, default: bool) -> bool:
    text = text.strip().lower()
    return default if not text else text in _TRUE


def _parse_csv(text: str) -> list[ImportRow | LineReport]:
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip().lower() for cell in next(reader)]
    names = [_COLUMNS.get(cell) for cell in header]
    if "login" not in names and "real_name" not in names:
        raise ValidationError(
            _(
                "The CSV header must name the columns, e.g. "
                "login,real_name,password,quota,addresses."
            )
        )
    unknown = [cell for cell, name in zip(header, names, strict=True) if name is None and cell]
    if unknown:
        raise ValidationError(
            _(
                "Unknown CSV column(s): %(columns)s. Known: login, real_name, password, quota, "
                "addresses, forward_to, disabled, primary_enabled."
            )
            % {"columns": ", ".join(unknown)}
        )
    rows: list[ImportRow | LineReport] = []
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        values = {name: cell.strip() for name, cell in zip(names, cells, strict=False) if name}
        try:
            rows.append(
                ImportRow(
                    line=line,
                    login=values.get("login") or None,
                    real_name=values.get("real_name", ""),
                    password=values.get("password") or None,
                    quota=parse_size(values["quota"]) if values.get("quota") else UNSET,
                    addresses=_split_list(values.get("addresses", "")),
                    forward_to=_split_list(values.get("forward_to", "")),
                    disabled=_flag(values.get("disabled", ""), False),
                    primary_enabled=_flag(values.get("primary_enabled", ""), True),
                )
            )
        except CourrielError as error:
            rows.append(LineReport(line, values.get("login", ""), False, error.message))
    return rows


def _parse_virtualmin(text: str) -> list[ImportRow | LineReport]:
    rows: list[ImportRow | LineReport] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 3:
            rows.append(
                LineReport(
                    number,
                    fields[0],
                    False,
                    _("Expected username:realname:password:ftp:email:quota:extras:forwards."),
                )
            )
            continue
        fields += [""] * (8 - len(fields))
        login, real_name, password, _ftp, email, quota, extras, forwards = fields[:8]
        try:
            quota_value: int | _Unset | None = UNSET
            if quota.strip():
                blocks = int(quota)
                if blocks < 0:
                    raise ValueError
                quota_value = None if blocks == 0 else blocks * 1024
        except ValueError:
            rows.append(
                LineReport(
                    number,
                    login,
                    False,
                    _("Invalid quota %(quota)s: a number of 1 kB blocks.") % {"quota": repr(quota)},
                )
            )
            continue
        rows.append(
            ImportRow(
                line=number,
                login=login.strip() or None,
                real_name=real_name.strip(),
                password=password or None,
                quota=quota_value,
                addresses=_split_list(extras),
                forward_to=_split_list(forwards),
                primary_enabled=_flag(email, True),
            )
        )
    return rows


def parse(text: str) -> list[ImportRow | LineReport]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValidationError(_("The file is empty: one mailbox per line is expected."))
    first = lines[0].lower()
    looks_csv = "," in first and any(name in first for name in ("login", "username", "real"))
    if len(lines) - looks_csv > MAX_LINES:
        raise ValidationError(_("At most %(count)s mailboxes at once.") % {"count": MAX_LINES})
    return _parse_csv(text) if looks_csv else _parse_virtualmin(text)


def import_rows(
    actor: Actor, domain: Domain, rows: list[ImportRow | LineReport]
) -> Iterator[LineReport]:
    """Create the parsed mailboxes one line at a time, saying how each went (the panel
    shows a progress bar from this while a long file is imported)."""
    for item in rows:
        if isinstance(item, LineReport):
            yield item
            continue
        try:
            created = create_mailbox(
                actor,
                domain,
                login=item.login,
                real_name=item.real_name,
                password=item.password,
                generate_password=item.password is None,
                quota=item.quota,
                addresses=item.addresses,
                forward_to=item.forward_to,
                disabled=item.disabled,
                primary_enabled=item.primary_enabled,
            )
        except CourrielError as error:
            yield LineReport(item.line, item.login or "", False, error.message)
        else:
            yield LineReport(item.line, created.mailbox.login, True, "created", created.password)


def import_mailboxes(
    actor: Actor,
    domain: Domain,
    text: str,
    progress: Callable[[int], None] | None = None,
) -> list[LineReport]:
    reports: list[LineReport] = []
    for report in import_rows(actor, domain, parse(text)):
        reports.append(report)
        if progress:
            progress(1)
    return reports
