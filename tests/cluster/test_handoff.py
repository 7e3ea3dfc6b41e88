"""Copies handed from the accepting hosting server to the one holding the mailbox over
their `[cluster]` LMTP link (issue 15): the link is kept open between copies, the
commands are pipelined, and the holding server checks the mailbox against its routing
cache. What must still hold: a link the holding server dropped is replaced and the
copy arrives once, at once; a refused copy leaves the link usable; a mailbox deleted
through another server takes no copy although the holding server had it cached.

Two servers of their own, with a routing cache of a minute (so that a test passing
cannot be the cache having expired by chance)."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.cluster import Cluster, running_cluster
from tests.fixtures.platform import STRONG, insecure_context, message
from tests.fixtures.waiting import wait_until

NODES = (("maximusconfessor", "127.0.0.11"), ("moses", "127.0.0.13"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = {"COURRIEL_SMTP_ROUTING_CACHE_SECONDS": "60"}
    with running_cluster(tmp_path_factory.mktemp("pair"), NODES, env) as cluster:
        cluster.cli("domain", "create", "autre.be", "--plan", "recommended", "--server", "moses")
        cluster.cli("user", "create", "autre.be", "--pass", STRONG, "--extra", "info")
        yield cluster


class NodeClient(smtplib.LMTP):
    """What another node does on the `[cluster]` port: implicit TLS, LHLO, AUTH PLAIN
    as a hosting server with that server's secret."""

    def __init__(self, address: str, port: int) -> None:
        self.context = insecure_context()
        super().__init__(address, port, timeout=30)

    def _get_socket(self, host: str, port: int, timeout: float) -> ssl.SSLSocket:
        raw = socket.create_connection((host, port), timeout=timeout)
        return self.context.wrap_socket(raw)

    def sign_in(self, name: str, key_file: Path) -> None:
        self.ehlo()
        self.user, self.password = name, key_file.read_text().strip()
        self.auth("PLAIN", self.auth_plain, initial_response_ok=True)

    def pipelined(self, *lines: str) -> list[tuple[int, bytes]]:
        self.send("".join(f"{line}\r\n" for line in lines).encode())
        return [self.getreply() for _ in lines]

    def copy(self, address: str, mailbox_id: int, name: str, content: bytes) -> tuple[int, bytes]:
        replies = self.pipelined(
            "MAIL FROM:<someone@example.org>",
            f"RCPT TO:<{address}> MAILBOX={mailbox_id} NAME={name}",
            "DATA",
        )
        assert [code for code, _ in replies] == [250, 250, 354], replies
        self.send(content + b".\r\n")
        return self.getreply()


def _client(cluster: Cluster) -> NodeClient:
    moses = cluster["moses"]
    client = NodeClient(moses.address, moses.port("cluster"))
    client.sign_in("maximusconfessor", cluster["maximusconfessor"].data / "cluster.key")
    return client


def _mailbox_id(cluster: Cluster, login: str) -> int:
    with psycopg.connect(cluster.url) as conn:
        row = conn.execute("SELECT id FROM accounts_mailbox WHERE login = %s", [login]).fetchone()
    assert row is not None, login
    return int(row[0])


def _name(mailbox_id: int, content: bytes) -> str:
    size = len(content)
    return (
        f"{int(time.time())}.Ntest{time.time_ns()}Q{mailbox_id}.maximusconfessor,S={size},W={size}"
    )


def _stamped(label: str, address: str) -> tuple[bytes, bytes]:
    stamp = f"{label}-{time.time_ns()}".encode()
    return stamp, message("someone@example.org", [address], stamp.decode())


def test_a_link_the_holding_server_dropped_is_replaced_and_the_copy_arrives_once(
    pair: Cluster,
) -> None:
    """The holding server restarted between two messages: the accepting one's open
    link is dead; the next copy goes on a new one before the sender's 250, not
    through the queue, and is stored once."""
    accepting, moses = pair["maximusconfessor"], pair["moses"]
    first, content = _stamped("before-restart", "info@autre.be")
    accepting.send("someone@example.org", ["info@autre.be"], content)
    assert pair.holders("autre0001", "autre.be", first)["moses"] == 1  # no waiting
    moses.stop()
    moses.start()
    for label in ("after-restart", "on-the-new-link"):
        stamp, content = _stamped(label, "info@autre.be")
        accepting.send("someone@example.org", ["info@autre.be"], content)
        assert pair.holders("autre0001", "autre.be", stamp) == {"maximusconfessor": 0, "moses": 1}
    assert accepting.courriel("queue", "list", "--json").json == []


def test_a_refused_copy_leaves_the_pipelined_link_usable(pair: Cluster) -> None:
    mailbox_id = _mailbox_id(pair, "autre0001")
    stamp, content = _stamped("pipelined", "info@autre.be")
    client = _client(pair)
    try:
        refused = client.pipelined(
            "MAIL FROM:<someone@example.org>",
            "RCPT TO:<info@autre.be> MAILBOX=0 NAME=x",
            "DATA",
        )
        assert [code for code, _ in refused][:2] == [250, 501], refused
        assert refused[2][0] >= 500, refused  # no DATA without a recipient
        assert client.rset()[0] == 250
        name = _name(mailbox_id, content)
        assert client.copy("info@autre.be", mailbox_id, name, content) == (250, b"2.0.0 Delivered")
        # The same copy again (its reply was lost): acknowledged, not stored twice.
        again = client.copy("info@autre.be", mailbox_id, name, content)
        assert again == (250, b"2.0.0 Already delivered")
    finally:
        client.close()
    assert pair.holders("autre0001", "autre.be", stamp)["moses"] == 1


def test_a_mailbox_deleted_through_another_server_takes_no_copy(pair: Cluster) -> None:
    """The holding server had the mailbox in its routing cache (a minute here) when it
    was deleted through the other server: retiring the Maildir makes it forget."""
    cli, moses = pair.cli, pair["moses"]  # the command line runs as maximusconfessor
    cli("user", "create", "autre.be", "--pass", STRONG, "--login", "parti")
    mailbox_id = _mailbox_id(pair, "parti")
    client = _client(pair)
    try:
        _stamp, content = _stamped("before-delete", "parti@autre.be")
        name = _name(mailbox_id, content)
        assert client.copy("parti@autre.be", mailbox_id, name, content)[0] == 250
        home = moses.maildir("parti", "autre.be").parent
        cli("user", "delete", "autre.be", "parti", "--yes")
        wait_until(lambda: not home.exists(), "the Maildir retired on moses")
        _stamp, content = _stamped("after-delete", "parti@autre.be")
        late = client.copy("parti@autre.be", mailbox_id, _name(mailbox_id, content), content)
    finally:
        client.close()
    assert late == (550, b"5.1.1 Mailbox deleted")
    assert not home.exists()
