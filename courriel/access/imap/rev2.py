"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: the server advertises both, and a connection
answers as IMAP4rev2 only after `ENABLE IMAP4rev2` (RFC 9051 Appendix A); every other
client keeps RFC 3501's answers, unchanged.

What the command grammar loses in IMAP4rev2 (Appendix E) is refused here, in one place,
before a command runs; what the answers change is decided by the session's `rev2` flag
where each answer is written:

- no `\\Recent`: no RECENT response, no `\\Recent` in FLAGS, and the STATUS item RECENT
  and the SEARCH keys RECENT, NEW and OLD are not in the grammar (BAD); a session in
  IMAP4rev2 does not take the messages' recent state either, so the next IMAP4rev1
  session still sees them recent (E.12);
- STATUS DELETED, the number of `\\Deleted` messages (E.3);
- SEARCH answers with ESEARCH, ALL when no RETURN is given (E.4);
- SELECT/EXAMINE send an untagged LIST of the mailbox (E.10), no `[UNSEEN n]` (E.11);
- CHECK is gone (E.17): BAD, the client should use NOOP;
- every unsolicited FETCH carries the UID (E.21);
- BODYSTRUCTURE joins RFC 2231 parameter continuations (E.6, 7.5.2);
- mailbox names are UTF-8 on the wire, as with UTF8=ACCEPT (E.16, Appendix A), and a
  name that is not in Unicode normalization form C cannot be created (5.1);
- a parent that exists only as a path is `\\NonExistent`, listed only when a child of
  it is outside the pattern (6.3.9.3, 6.3.9.6); DELETE of a folder with sub-folders
  says `[HASCHILDREN]` (6.3.5).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from courriel.access.imap.errors import Bad, No
from courriel.access.imap.parser import Command

NAME = "IMAP4rev2"
STATUS_ONLY_REV1 = {"RECENT"}
STATUS_ONLY_REV2 = {"DELETED"}
SEARCH_ONLY_REV1 = {"recent"}  # the parser's node for RECENT, NEW and OLD


def refuse(command: Command, rev2: bool) -> None:
    """BAD for what the client's protocol revision does not have: the command as a
    whole, a STATUS item (STATUS, LIST-STATUS), a SEARCH key (SEARCH, SORT, THREAD);
    NO for a new mailbox name IMAP4rev2 does not allow."""
    args = command.args
    if rev2 and command.name == "CHECK":
        raise Bad("CHECK is not in IMAP4rev2: use NOOP.")
    if rev2 and command.name in ("CREATE", "RENAME"):
        _check_new_name(args["mailbox" if command.name == "CREATE" else "new"])
    items = {"STATUS": args.get("items"), "LIST": args.get("status")}.get(command.name)
    if items:  # STATUS, or LIST ... RETURN (STATUS (...)) (NOTIFY's STATUS is a flag)
        unknown = set(items) & (STATUS_ONLY_REV1 if rev2 else STATUS_ONLY_REV2)
        if unknown:
            raise Bad(f"Unknown STATUS item {' '.join(sorted(unknown))}")
    keys = args.get("keys")
    if rev2 and keys is not None and _uses(keys, SEARCH_ONLY_REV1):
        raise Bad("RECENT, NEW and OLD are not SEARCH keys in IMAP4rev2.")


def _uses(node: Any, kinds: set[str]) -> bool:
    """Whether a parsed search program has a key of one of these kinds."""
    if isinstance(node, list):
        return any(_uses(child, kinds) for child in node)
    if not isinstance(node, tuple) or not node:
        return False
    return node[0] in kinds or any(_uses(child, kinds) for child in node[1:])


def _check_new_name(name: str) -> None:
    """RFC 9051 5.1: a new mailbox name is Net-Unicode (NFC); we refuse to create
    another form rather than convert it, so that a client never meets a name it did
    not give."""
    if unicodedata.normalize("NFC", name) != name:
        raise No("Mailbox names must be in Unicode normalization form C.", "CANNOT")
