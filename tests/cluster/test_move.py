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
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    env = getattr(request, "param", None)
    with running_cluster(tmp_path, NODES, env) as cluster:
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
        flags = " ".join(f for f in flags.split() if f != "\\Recent")  # one session's
        subject = row[1].decode().split(":", 1)[1].strip()
        found[uid] = (subject, flags)
    return validity, found


def _stamps(cluster: Cluster, node: str) -> list[str]:
    return [
        m.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        for m in cluster[node].messages("monsite0001", "monsite.be")
    ]


def _seed(cluster: Cluster, count: int, size: int = 2000) -> list[str]:
    """`count` messages already in the mailbox on maximusconfessor (written as files, as
    years of mail would be), the first one flagged; their subjects."""
    cur = cluster["maximusconfessor"].maildir("monsite0001", "monsite.be") / "cur"
    padding = b"x" * 76 + b"\r\n"
    subjects = []
    now = int(time.time())
    for i in range(count):
        subject = f"old-{i:06d}"
        head = f"From: a@example.org\r\nTo: info@monsite.be\r\nSubject: {subject}\r\n\r\n"
        data = head.encode() + padding * max(1, (size - len(head)) // len(padding))
        flags = "F" if i == 0 else "S"
        (cur / f"{now - count + i}.M{i}P1.maximusconfessor,S={len(data)}:2,{flags}").write_bytes(
            data
        )
        subjects.append(subject)
    return subjects


def _move_row(cluster: Cluster) -> tuple[str, int, int, bool]:
    """(state, files_done, files_total, fenced) of the latest move, read from the database."""
    import psycopg

    with psycopg.connect(cluster.url) as conn:
        row = conn.execute(
            "SELECT state, files_done, files_total, fenced FROM cluster_domainmove "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return row


class Sender:
    """Mail for the moving mailbox at `rate` messages per second, to both servers in
    turn, until `count` are sent."""

    def __init__(self, cluster: Cluster, count: int, rate: float) -> None:
        self.cluster, self.count, self.rate = cluster, count, rate
        self.sent: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        start = time.monotonic()
        for i in range(self.count):
            if self.stop.is_set():
                return
            stamp = f"during-{i:05d}"
            _send(self.cluster, ("maximusconfessor", "moses")[i % 2], stamp)
            self.sent.append(stamp)
            delay = start + (i + 1) / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def __enter__(self) -> Sender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _move_under_load(cluster: Cluster, seeded: int, during: int, rate: float) -> None:
    subjects = _seed(cluster, seeded)
    for i in range(3):
        _send(cluster, "moses", f"before-{i}")  # through the other server
        subjects.append(f"before-{i}")
    wait_until(lambda: len(_stamps(cluster, "maximusconfessor")) == len(subjects), "the mail")
    client = _imap(cluster, "maximusconfessor")
    validity, before = _uids_and_flags(client)  # a client that synced before the move
    client.logout()
    assert len(before) == len(subjects)
    assert "\\Flagged" in before[min(before)][1]

    with Sender(cluster, during, rate) as sender:
        started = time.monotonic()
        result = cluster.cli("domain", "move", "monsite.be", "--to", "moses", timeout=1800)
        moved_in = time.monotonic() - started
        sender.thread.join()  # the sender goes on to the end: mail after the move too
    assert "done" in result.out, result.out
    print(f"moved {seeded} messages in {moved_in:.1f} s with {len(sender.sent)} arriving")
    expected = sorted(subjects + sender.sent)
    wait_until(
        lambda: len(_stamps(cluster, "moses")) >= len(expected),
        "every message on moses",
        timeout=120,
    )
    assert sorted(_stamps(cluster, "moses")) == expected  # all there, none doubled
    assert not (cluster["maximusconfessor"].data / "mail" / "monsite.be").exists()
    assert not list((cluster["maximusconfessor"].data / "mail" / ".moving").glob("*"))
    assert not list((cluster["moses"].data / "mail" / ".moving-in").glob("*"))
    for node in cluster.nodes:  # logging in anywhere, the client downloads nothing again
        validity_after, after = _uids_and_flags(_imap(cluster, node))
        assert validity_after == validity
        assert {uid: after[uid] for uid in before} == before  # same UIDs, subjects, flags
    moves = cluster.cli("domain", "moves", "--json").json
    assert moves[0]["state"] == "done" and moves[0]["target"] == "moses"
    servers = {row["name"]: row["domains"] for row in cluster.cli("server", "list", "--json").json}
    assert servers["moses"] == 1 and servers["maximusconfessor"] == 0


def test_a_domain_moves_while_mail_keeps_arriving(cluster: Cluster) -> None:
    _move_under_load(cluster, seeded=2000, during=200, rate=20)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_twenty_thousand_messages_move_while_a_thousand_arrive(cluster: Cluster) -> None:
    """The issue's scale: 20,000 messages, 1,000 more arriving at 20 per second."""
    _move_under_load(cluster, seeded=20_000, during=1000, rate=20)


def test_a_move_cancelled_before_the_switch_leaves_the_domain_where_it_was(
    cluster: Cluster,
) -> None:
    subjects = _seed(cluster, 50)
    cluster["moses"].stop()  # the target does the work: nothing happens until it is back
    cluster.cli("domain", "move", "monsite.be", "--to", "moses", "--no-wait")
    refused = cluster.cli("domain", "move", "monsite.be", "--to", "maximusconfessor", ok=False)
    assert "already being moved" in refused.err
    cluster.cli("domain", "move", "monsite.be", "--cancel")
    cluster["moses"].start()
    wait_until(lambda: _move_row(cluster)[0] == "cancelled", "the move cancelled")
    assert sorted(_stamps(cluster, "maximusconfessor")) == subjects
    assert not list((cluster["moses"].data / "mail" / ".moving-in").glob("*"))
    assert not (cluster["moses"].data / "mail" / "monsite.be").exists()
    servers = {row["name"]: row["domains"] for row in cluster.cli("server", "list", "--json").json}
    assert servers["maximusconfessor"] == 1
    _send(cluster, "moses", "after-cancel")
    wait_until(lambda: "after-cancel" in _stamps(cluster, "maximusconfessor"), "mail after")


@pytest.mark.parametrize("cluster", [{"COURRIEL_CLUSTER_MOVE_BANDWIDTH": "2M"}], indirect=True)
def test_a_move_killed_halfway_goes_on_when_the_target_restarts(cluster: Cluster) -> None:
    subjects = _seed(cluster, 1500, size=8000)  # 12 MB at 2 MB/s: about 6 s of copying
    client = _imap(cluster, "maximusconfessor")
    validity, before = _uids_and_flags(client)
    client.logout()
    cluster.cli("domain", "move", "monsite.be", "--to", "moses", "--no-wait")
    wait_until(lambda: _move_row(cluster)[1] > 300, "the copy under way", timeout=60, interval=0.1)
    cluster["moses"].kill()
    state, done, total, _fenced = _move_row(cluster)
    assert state == "copying" and 0 < done < total, (state, done, total)
    _send(cluster, "maximusconfessor", "while-killed")
    cluster["moses"].start()
    wait_until(lambda: _move_row(cluster)[0] == "done", "the move done", timeout=300)
    expected = sorted([*subjects, "while-killed"])
    wait_until(lambda: len(_stamps(cluster, "moses")) >= len(expected), "the mail on moses")
    assert sorted(_stamps(cluster, "moses")) == expected
    validity_after, after = _uids_and_flags(_imap(cluster, "moses"))
    assert validity_after == validity
    assert {uid: after[uid] for uid in before} == before
    assert not (cluster["maximusconfessor"].data / "mail" / "monsite.be").exists()
