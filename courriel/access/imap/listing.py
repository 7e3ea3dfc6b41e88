"""LIST and LSUB: which names a request selects and with which attributes — RFC 3501,
LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819) — computed
the way Dovecot 2.3 computes them (`cmd-list.c`), so clients see the same folder tree
from both servers.

The rules that matter to clients: a parent that exists only as a path (`Projets` of a
`Projets/2024` made by another program, or after `RENAME X Archives/X`) is `\\Noselect`
in a plain LIST and `\\NonExistent` only in an extended one; child information
(`\\HasChildren`) comes with a plain LIST or when asked for with RETURN (CHILDREN); the
special-use attribute with a plain LIST, LSUB, or when asked for.

After ENABLE IMAP4rev2 (RFC 9051 6.3.9.3, Table 3 of 6.3.9.6, example 10 of 6.3.9.8), such
a parent is `\\NonExistent \\HasChildren` in every LIST, and it is listed only when one of
its sub-folders is outside the pattern (`LIST "" %`), not when they are all listed
anyway (`LIST "" *`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

SEPARATOR = "/"
SUBSCRIBED, NOSELECT, NONEXISTENT = "\\Subscribed", "\\Noselect", "\\NonExistent"
CHILDREN, NOCHILDREN = "\\HasChildren", "\\HasNoChildren"


class ListError(ValueError):
    """A LIST request that makes no sense (tagged BAD)."""


@dataclass
class ListRequest:
    lsub: bool
    reference: str
    patterns: list[str]
    select: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)  # LIST-STATUS items
    extended: bool = False  # selection options, a pattern list or RETURN were given
    rev2: bool = False  # the client enabled IMAP4rev2

    def __post_init__(self) -> None:
        if "RECURSIVEMATCH" in self.select and not {"SUBSCRIBED", "SPECIAL-USE"} & set(self.select):
            raise ListError("RECURSIVEMATCH must not be the only selection.")
        unknown = set(self.select) - {"SUBSCRIBED", "RECURSIVEMATCH", "SPECIAL-USE", "REMOTE"}
        if unknown:
            raise ListError("Unknown select options.")


@dataclass
class Entry:
    name: str
    attributes: list[str]
    childinfo: list[str]
    selectable: bool  # LIST-STATUS gives a STATUS line for it


def matcher(reference: str, pattern: str) -> re.Pattern[str]:
    """LIST wildcards: * matches anything, % anything but the separator; INBOX in any
    case."""
    full = reference + pattern if not pattern.startswith(SEPARATOR) else pattern
    regex = ""
    if full[:5].upper() == "INBOX":
        regex, full = "(?i:INBOX)", full[5:]
    for char in full:
        if char == "*":
            regex += ".*"
        elif char == "%":
            regex += "[^/]*"
        else:
            regex += re.escape(char)
    return re.compile(regex, re.S)


def _ancestors(name: str) -> list[str]:
    levels = name.split(SEPARATOR)
    return [SEPARATOR.join(levels[:depth]) for depth in range(1, len(levels))]


def _has_children(name: str, present: set[str]) -> bool:
    return any(other.startswith(name + SEPARATOR) for other in present)


def entry(name: str, existing: list[str], special_use: Callable[[str], str | None]) -> Entry:
    """One existing mailbox as a plain LIST shows it (SELECT's LIST in IMAP4rev2)."""
    attributes = [CHILDREN if _has_children(name, set(existing)) else NOCHILDREN]
    use = special_use(name)
    if use:
        attributes.append(use)
    return Entry(name, attributes, [], True)


def list_mailboxes(
    request: ListRequest,
    existing: list[str],
    subscribed: set[str],
    special_use: Callable[[str], str | None],
) -> list[Entry]:
    """The entries of a LIST/LSUB answer, INBOX first then by name."""
    select = set(request.select)
    returns = set(request.returns)
    if request.lsub:
        select |= {"SUBSCRIBED", "RECURSIVEMATCH"}
    by_subscription = "SUBSCRIBED" in select
    by_special_use = "SPECIAL-USE" in select
    recursive = "RECURSIVEMATCH" in select
    show_children = not request.lsub and (not request.extended or "CHILDREN" in returns)
    show_special = (
        request.lsub or not request.extended or bool({"SPECIAL-USE"} & (returns | select))
    )
    show_subscribed = not request.lsub and (by_subscription or "SUBSCRIBED" in returns)
    matchers = [matcher(request.reference, p) for p in request.patterns]
    lsub_only_subscribed = request.lsub and not (request.patterns[0].endswith("%"))

    present = set(existing)
    nonexistent_parents = {a for n in existing for a in _ancestors(n)} - present

    def matches(name: str) -> bool:
        return any(m.fullmatch(name) for m in matchers)

    # RECURSIVEMATCH: parents of selected names the patterns leave out (CHILDINFO)
    child_subscribed = {a for n in subscribed if not matches(n) for a in _ancestors(n)}
    child_special = {
        a for n in existing if special_use(n) and not matches(n) for a in _ancestors(n)
    }

    if by_subscription:
        base = set(subscribed)
        if recursive:
            base |= child_subscribed
    elif by_special_use:
        base = {n for n in existing if special_use(n)}
        if recursive:
            base |= child_special
    elif request.rev2:  # only for a sub-folder the patterns leave out (RFC 9051)
        base = present | {
            parent
            for name in present
            if not matches(name)
            for parent in _ancestors(name)
            if parent in nonexistent_parents
        }
    else:
        base = present | nonexistent_parents

    entries = []
    for name in sorted(base, key=lambda n: (n != "INBOX", n)):
        if not matches(name):
            continue
        is_subscribed = name in subscribed
        childinfo = []
        attributes: list[str] = []
        exists = name in present
        if by_subscription and not is_subscribed and lsub_only_subscribed:
            continue  # LSUB with a pattern not ending in %: subscribed names only
        if recursive and by_subscription and name in child_subscribed:
            childinfo.append("SUBSCRIBED")
        if recursive and by_special_use and name in child_special:
            childinfo.append("SPECIAL-USE")
        if show_subscribed and is_subscribed:
            attributes.append(SUBSCRIBED)
        if request.lsub:
            if not is_subscribed:
                attributes.append(NOSELECT)
        elif not exists:
            attributes.append(NONEXISTENT if request.extended or request.rev2 else NOSELECT)
        if show_children:
            attributes.append(CHILDREN if _has_children(name, present) else NOCHILDREN)
        elif request.rev2 and not exists and not (by_subscription or by_special_use):
            attributes.append(CHILDREN)  # RFC 9051 6.3.9.6: why a missing parent is listed
        use = special_use(name) if exists else None
        if show_special and use:
            attributes.append(use)
        if not request.extended:
            childinfo = []
        entries.append(Entry(name, attributes, childinfo, exists))
    return entries
