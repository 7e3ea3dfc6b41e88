"""Moving a domain (issue 15): `courriel domain move monsite.be --to moses` while mail
keeps arriving at every node. Nothing lost, nothing doubled, UIDs, UIDVALIDITY and
flags kept, nothing left on the old node; cancelled before the switch; resumed after
the target was killed in the middle."""

from __future__ import annotations

import imaplib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.cluster import Cluster, running_cluster
from tests.fixtures.platform import STRONG, insecure_context, message
from tests.fixtures.waiting import wait_until

NODES = (("maximusconfessor", "127.0.0.11"), ("moses", "127.0.0.13"))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, NODES) as cluster:
        cli = cluster.cli
        cli("domain", "create", "monsite.be", "--plan", "recommended", "--server", NODES[0][0])
        cli("user", "create", "monsite.be", "--pass", STRONG, "--extra", "info")
        yield cluster


def _send(cluster: Cluster, node: str, stamp: str) -> None:
    cluster[node].send(
        "someone@example.org",
        ["info@monsite.be"],
        message("someone@example.org", ["info@monsite.be"], stamp, subject=stamp),
    )


def _imap(cluster: Cluster, node: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        cluster[node].address, cluster[node].port("imaps"), ssl_context=insecure_context()
    )
    client.login("monsite0001", STRONG)
    return client


def _uids_and_flags(client: imaplib.IMAP4_SSL) -> tuple[int, dict[int, tuple[str, str]]]:
    typ, _ = client.select("INBOX")
    assert typ == "OK"
    validity = int(client.untagged_responses["UIDVALIDITY"][0])
    typ, rows = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found: dict[int, tuple[str, str]] = {}
    for row in rows:
        if not isinstance(row, tuple):
            continue
        head = row[0].decode()
        uid = int(re.search(r"UID (\d+)", head).group(1))  # type: ignore[union-attr]
        flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1)  # type: ignore[union-attr]
        subject = row[1].decode().split(":", 1)[1].strip()
        found[uid] = (subject, flags)
    return validity, found


def _stamps(cluster: Cluster, node: str) -> list[str]:
    return [
        m.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        for m in cluster[node].messages("monsite0001", "monsite.be")
    ]


def test_a_domain_moves_while_mail_keeps_arriving(cluster: Cluster) -> None:
    for i in range(30):
        _send(cluster, "maximusconfessor" if i % 2 else "moses", f"before-{i}")
    wait_until(lambda: len(_stamps(cluster, "maximusconfessor")) == 30, "30 messages")
    client = _imap(cluster, "maximusconfessor")
    validity, before = _uids_and_flags(client)
    assert len(before) == 30
    first = min(before)
    client.uid("STORE", str(first), "+FLAGS", r"(\Flagged)")
    client.logout()
    _, before = _uids_and_flags(_imap(cluster, "maximusconfessor"))

    sent: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        i = 0
        while not stop.is_set():
            stamp = f"during-{i}"
            _send(cluster, ("maximusconfessor", "moses")[i % 2], stamp)
            sent.append(stamp)
            i += 1
            time.sleep(0.05)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        result = cluster.cli("domain", "move", "monsite.be", "--to", "moses", timeout=300)
    finally:
        stop.set()
        sender.join()
    assert "done" in result.out, result.out
    expected = sorted([f"before-{i}" for i in range(30)] + sent)
    wait_until(
        lambda: len(_stamps(cluster, "moses")) >= len(expected),
        "every message on moses",
        timeout=60,
    )
    assert sorted(_stamps(cluster, "moses")) == expected  # none doubled
    assert not (cluster["maximusconfessor"].data / "mail" / "monsite.be").exists()
    assert not list((cluster["maximusconfessor"].data / "mail" / ".moving").glob("*"))
    validity_after, after = _uids_and_flags(_imap(cluster, "moses"))
    assert validity_after == validity
    assert {uid: after[uid] for uid in before} == before  # same UIDs, subjects and flags
    assert r"\Flagged" in after[first][1]
    moves = cluster.cli("domain", "moves", "--json").json
    assert moves[0]["state"] == "done" and moves[0]["target"] == "moses"
    servers = {row["name"]: row["domains"] for row in cluster.cli("server", "list", "--json").json}
    assert servers["moses"] == 1 and servers["maximusconfessor"] == 0
