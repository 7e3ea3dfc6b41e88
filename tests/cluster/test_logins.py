"""Logins go to the domain's node (issue 15): an IMAP or POP3 client may sign in on
any hosting server and sees its mailbox as it is on the server that holds it (the
session is handed over, as with Dovecot's proxy), with the same UIDs and flags."""

from __future__ import annotations

import imaplib
import poplib
import time

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.platform import STRONG, insecure_context, message

MAILBOXES = (("monsite0001", "monsite.be", "maximusconfessor"), ("autre0001", "autre.be", "moses"))


def _deliver(cluster: Cluster, login: str, domain: str, home: str) -> str:
    stamp = f"login-{login}-{time.time_ns()}"
    cluster["vonmuenchhausen"].send(
        "someone@example.org",
        [f"info@{domain}"],
        message("someone@example.org", [f"info@{domain}"], stamp, subject=stamp),
    )
    cluster.wait_copies(login, domain, stamp.encode(), home)
    return stamp


def _imap(cluster: Cluster, node: str, login: str, password: str = STRONG) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        cluster[node].address, cluster[node].port("imaps"), ssl_context=insecure_context()
    )
    client.login(login, password)
    return client


@pytest.mark.parametrize(("login", "domain", "home"), MAILBOXES)
def test_imap_on_every_node_sees_the_mailbox_of_the_domain_node(
    cluster: Cluster, login: str, domain: str, home: str
) -> None:
    stamp = _deliver(cluster, login, domain, home)
    seen: dict[str, tuple[int, list[bytes]]] = {}
    for node in cluster.nodes:
        client = _imap(cluster, node, login)
        try:
            typ, _ = client.select("INBOX")
            assert typ == "OK"
            validity = int(client.untagged_responses["UIDVALIDITY"][0])
            typ, found = client.uid("SEARCH", "SUBJECT", stamp)
            assert typ == "OK"
            seen[node] = (validity, found[0].split())
        finally:
            client.logout()
    assert len({value for value in map(repr, seen.values())}) == 1, seen
    [(validity, uids)] = {repr(v): v for v in seen.values()}.values()
    assert len(uids) == 1
    # A flag set through one server is what every other one shows.
    client = _imap(cluster, "vonmuenchhausen", login)
    client.select("INBOX")
    client.uid("STORE", uids[0], "+FLAGS", r"(\Flagged)")
    client.logout()
    client = _imap(cluster, home, login)
    client.select("INBOX")
    typ, data = client.uid("FETCH", uids[0], "(FLAGS)")
    client.logout()
    assert b"\\Flagged" in data[0]
    # Nothing of the mailbox is kept where it does not live.
    for name, node in cluster.nodes.items():
        assert node.maildir(login, domain).exists() == (name == home), name


@pytest.mark.parametrize(("login", "domain", "home"), MAILBOXES)
def test_pop3_on_every_node_reads_the_mailbox_of_the_domain_node(
    cluster: Cluster, login: str, domain: str, home: str
) -> None:
    stamp = _deliver(cluster, login, domain, home)
    listings = {}
    for name, node in cluster.nodes.items():
        client = poplib.POP3_SSL(node.address, node.port("pop3s"), context=insecure_context())
        try:
            client.user(login)
            assert client.pass_(STRONG).startswith(b"+OK")
            uidl = client.uidl()[1]
            listings[name] = uidl
            bodies = [b"\n".join(client.retr(i + 1)[1]) for i in range(len(uidl))]
            assert sum(stamp.encode() in body for body in bodies) == 1
        finally:
            client.quit()
    assert len({repr(v) for v in listings.values()}) == 1, listings


def test_wrong_passwords_are_refused_on_every_node(cluster: Cluster) -> None:
    for node in cluster.nodes:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            _imap(cluster, node, "autre0001", "not the password")
        pop = poplib.POP3_SSL(
            cluster[node].address, cluster[node].port("pop3s"), context=insecure_context()
        )
        pop.user("autre0001")
        with pytest.raises(poplib.error_proto, match="AUTH"):
            pop.pass_("not the password")
        pop.quit()


def _download(cluster: Cluster, node: str, token: str) -> bytes:
    import urllib.request

    request = urllib.request.Request(
        f"https://{cluster[node].address}:{cluster[node].port('web')}/api/v1/me/download"
        "?format=mbox",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, context=insecure_context(), timeout=60) as response:
        assert response.headers["Content-Type"] == "application/mbox"
        return response.read()


def test_the_mailbox_download_comes_from_its_server_through_any_other(cluster: Cluster) -> None:
    stamp = _deliver(cluster, "autre0001", "autre.be", "moses")
    token = cluster.cli("token", "create", "--name", "dl", "--login", "autre0001", "--json").json
    direct = _download(cluster, "moses", token["token"])
    assert stamp.encode() in direct
    for node in ("maximusconfessor", "vonmuenchhausen"):
        assert _download(cluster, node, token["token"]) == direct
