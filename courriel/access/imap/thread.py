"""THREAD (RFC 5256): ORDEREDSUBJECT, and REFERENCES (the message-id/References
algorithm of section 4, with its subject grouping), answered in the RFC's nested list
form: `(1 2 (3)(4 5))`."""

from __future__ import annotations

import re
from collections.abc import Callable

from courriel.access.imap.sort import Keys
from courriel.mailstore.headers import field_values
from courriel.mailstore.index import FolderIndex, Message

_MSGID = re.compile(r"<[^<>\s]+>")


class Node:
    __slots__ = ("children", "message", "number", "parent")

    def __init__(self, message: Message | None = None, number: int = 0) -> None:
        self.message = message
        self.number = number  # sequence number or UID, as answered
        self.parent: Node | None = None
        self.children: list[Node] = []

    def is_ancestor_of(self, other: Node) -> bool:
        node: Node | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def adopt(self, child: Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)


def render(roots: list[Node], shown: Callable[[int], int] = int) -> str:
    """`(1 2 (3)(4))...` for a list of thread roots (`shown`: a UID as answered).
    Iterative: a long chain of replies is no recursion limit."""
    out: list[str] = []
    # stack of (node, opened): a node's text, then its children
    for root in roots:
        out.append("(")
        stack: list[Node | str] = [root]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            node = item
            text = str(shown(node.number)) if node.message is not None else ""
            children = node.children
            if not children:
                out.append(text)
            elif len(children) == 1 and node.message is not None:
                out.append(text + " ")
                stack.append(children[0])
            else:
                if text:
                    out.append(text + " ")
                for child in reversed(children):
                    stack.append(")")
                    stack.append(child)
                    stack.append("(")
        out.append(")")
    return "".join(out)


def ordered_subject(index: FolderIndex, found: list[tuple[int, Message, int]]) -> list[Node]:
    """Threads of messages with the same base subject, each sorted by sent date, the
    threads by the date of their first message. `found`: (seq, message, number)."""
    keys = Keys(index)
    groups: dict[str, list[tuple[int, int, Message, int]]] = {}
    for seq, message, number in found:
        groups.setdefault(keys.subject(message), []).append(
            (keys.date(message), seq, message, number)
        )
    roots = []
    for members in groups.values():
        members.sort(key=lambda m: (m[0], m[1]))
        root = Node(members[0][2], members[0][3])
        for _date, _seq, message, number in members[1:]:
            root.adopt(Node(message, number))
        roots.append((members[0][0], members[0][1], root))
    roots.sort(key=lambda r: (r[0], r[1]))
    return [root for _d, _s, root in roots]


def references(index: FolderIndex, found: list[tuple[int, Message, int]]) -> list[Node]:
    """RFC 5256 section 4, steps 1 to 6."""
    keys = Keys(index)
    table: dict[str, Node] = {}
    seqs: dict[int, int] = {}
    unique = 0
    for seq, message, number in found:
        message_id, *refs = index.header_summary(message, _IDS, _thread_ids).split(" ")
        if not message_id or (message_id in table and table[message_id].message is not None):
            unique += 1
            message_id = f"\0unique{unique}"
        node = table.get(message_id)
        if node is None:
            node = table[message_id] = Node()
        node.message, node.number = message, number
        seqs[id(node)] = seq
        previous: Node | None = None
        for ref in refs:  # (1A) link the references as a chain
            container = table.get(ref)
            if container is None:
                container = table[ref] = Node()
            if (
                previous is not None
                and container.parent is None
                and container is not previous
                and not container.is_ancestor_of(previous)
            ):
                previous.adopt(container)
            previous = container
        # (1B) the message hangs under its last reference (if that makes no loop)
        if previous is not None and previous is not node and not node.is_ancestor_of(previous):
            previous.adopt(node)
        elif node.parent is not None and not refs:
            node.parent.children.remove(node)
            node.parent = None
    roots = [node for node in table.values() if node.parent is None]  # (2)
    roots = _prune(roots, top=True)  # (4)

    def date(node: Node) -> tuple[int, int]:
        while node.message is None and node.children:
            node = node.children[0]
        assert node.message is not None
        return keys.date(node.message), seqs.get(id(node), 0)

    def sort_tree(nodes: list[Node]) -> None:  # (6)
        for node in nodes:
            sort_tree(node.children)
        nodes.sort(key=date)

    for root in roots:
        sort_tree(root.children)
    roots = _group_by_subject(roots, keys)  # (5)
    sort_tree(roots)
    return roots


_IDS = "\0thread"  # header cache key


def _thread_ids(header: bytes) -> str:
    """A message's Message-ID and the ids it refers to (References, else the first of
    In-Reply-To), from one read of its header, as one string (kept for every message
    of a folder: "<id> <ref1> <ref2>", or " <ref1>..." without an id)."""
    ids = _MSGID.findall(" ".join(field_values(header, "message-id")))
    refs = _MSGID.findall(" ".join(field_values(header, "references")))
    if not refs:
        refs = _MSGID.findall(" ".join(field_values(header, "in-reply-to")))[:1]
    return " ".join([ids[0] if ids else "", *refs])


def _prune(nodes: list[Node], top: bool) -> list[Node]:
    """(4) Dummies (referenced, not present) go: without children they vanish; their
    children take their place, except at the top where a dummy with several children
    stays to hold them together."""
    kept: list[Node] = []
    for node in nodes:
        node.children = _prune(node.children, top=False)
        for child in node.children:
            child.parent = node
        if node.message is not None:
            kept.append(node)
        elif not node.children:
            continue
        elif not top or len(node.children) == 1:
            for child in node.children:
                child.parent = node.parent
            kept.extend(node.children)
        else:
            kept.append(node)
    return kept


def _group_by_subject(roots: list[Node], keys: Keys) -> list[Node]:
    """(5) Roots with the same base subject are brought together: under the one that
    is not a reply, or under a new dummy that holds both."""

    def subject(node: Node) -> tuple[str, bool]:
        first = node if node.message is not None else node.children[0]
        assert first.message is not None
        return keys.subject(first.message), keys.is_reply(first.message)

    table: dict[str, Node] = {}
    for root in roots:  # (5A)
        base, reply = subject(root)
        if not base:
            continue
        old = table.get(base)
        if old is None or (
            old.message is not None and (root.message is None or (subject(old)[1] and not reply))
        ):
            table[base] = root
    result = list(roots)
    for root in roots:  # (5B)
        base, reply = subject(root)
        target = table.get(base) if base else None
        if target is None or target is root:
            continue
        result.remove(root)
        if target.message is None and root.message is None:
            for child in list(root.children):
                target.adopt(child)
        elif target.message is None or (reply and not subject(target)[1]):
            target.adopt(root)
        else:
            holder = Node()
            result[result.index(target)] = holder
            holder.adopt(target)
            holder.adopt(root)
            table[base] = holder
    return result
