"""Work asked on one hosting server for mail that lives on another (issue 15): a
restore, the list of a domain's snapshots, a mailbox deleted, a quota changed. Each is
done on the server holding the mail, and nothing of it is made where it does not live."""

from __future__ import annotations

import imaplib
import re
import time

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.platform import STRONG, insecure_context, message
from tests.fixtures.waiting import wait_until


def _deliver(cluster: Cluster, login: str, address: str, domain: str, home: str) -> str:
    """A message for `address` given to a third server; its stamp (Subject and body)."""
    stamp = f"remote-{login}-{time.time_ns()}"
    content = message("someone@example.org", [address], stamp, subject=stamp)
    cluster["vonmuenchhausen"].send("someone@example.org", [address], content)
    cluster.wait_copies(login, domain, stamp.encode(), home)
    return stamp


def _message_id(cluster: Cluster, node: str, login: str, domain: str, stamp: str) -> str:
    (found,) = [m for m in cluster[node].messages(login, domain) if stamp.encode() in m]
    return re.search(rb"Message-ID: <([^>]+)>", found)[1].decode()


def _expunge(cluster: Cluster, node: str, login: str, stamp: str) -> None:
    client = imaplib.IMAP4_SSL(
        cluster[node].address, cluster[node].port("imaps"), ssl_context=insecure_context()
    )
    client.login(login, STRONG)
    client.select("INBOX")
    typ, found = client.uid("SEARCH", "SUBJECT", stamp)
    assert typ == "OK" and len(found[0].split()) == 1
    client.uid("STORE", found[0], "+FLAGS", r"(\Deleted)")
    client.expunge()
    client.logout()


def test_a_restore_asked_on_another_server_runs_where_the_mail_and_its_backups_are(
    cluster: Cluster,
) -> None:
    stamp = _deliver(cluster, "autre0001", "info@autre.be", "autre.be", "moses")
    moses = cluster["moses"]
    moses.courriel("backup", "run", "--json")
    message_id = _message_id(cluster, "moses", "autre0001", "autre.be", stamp)
    _expunge(cluster, "moses", "autre0001", stamp)
    assert cluster.holders("autre0001", "autre.be", stamp.encode())["moses"] == 0

    # The domain's snapshots, listed on a server that holds none of its mail.
    listed = cluster.cli("backup", "list", "--domain", "autre.be", "--json").json
    assert listed and listed[0]["name"] == "daily.0" and listed[0]["mailboxes"] == 1
    assert cluster.cli("backup", "list", "--json").json["snapshots"] == []  # its own: none

    restored = cluster.cli(
        "backup", "restore", "autre.be", "--user", "autre0001", "--message", message_id, "--yes",
        "--json",
    ).json  # fmt: skip
    assert [r["mailbox"] for r in restored["restored"]] == ["autre0001"]
    folder = restored["folder"]
    assert sum(stamp.encode() in m for m in moses.messages("autre0001", "autre.be", folder)) == 1
    for name in ("maximusconfessor", "vonmuenchhausen"):
        assert not cluster[name].maildir("autre0001", "autre.be").exists(), name

    # Asked again (the name typed another way): nothing restored twice; a message that
    # is not there: the holding server's error, as if the restore had run here.
    again = cluster.cli(
        "backup", "restore", "Autre.BE", "--user", "autre0001", "--message", message_id, "--yes",
        "--json",
    ).json  # fmt: skip
    assert again["restored"] == [] and again["already_present"] == 1
    missing = cluster.cli(
        "backup", "restore", "autre.be", "--user", "autre0001", "--message", "nope@x", "--yes",
        ok=False,
    )  # fmt: skip
    assert missing.code == 66 and "No message 'nope@x'" in missing.err, missing.err


def test_a_mailbox_deleted_on_another_server_leaves_no_mail_where_it_lived(
    cluster: Cluster,
) -> None:
    cli = cluster.cli  # on maximusconfessor; autre.be lives on moses
    moses = cluster["moses"]
    cli("user", "create", "autre.be", "--pass", STRONG, "--login", "partant")
    stamp = _deliver(cluster, "partant", "partant@autre.be", "autre.be", "moses")
    home = moses.maildir("partant", "autre.be").parent

    cli("user", "delete", "autre.be", "partant", "--yes")
    wait_until(lambda: not home.exists(), "the Maildir retired on moses")
    retired = [p for p in (moses.data / "deleted").iterdir() if p.name.endswith("-partant")]
    assert len(retired) == 1 and any(
        stamp.encode() in p.read_bytes() for p in retired[0].rglob("*") if p.is_file()
    )


def test_a_deletion_while_the_holding_server_is_down_is_done_when_it_starts(
    cluster: Cluster,
) -> None:
    cli = cluster.cli
    moses = cluster["moses"]
    cli("user", "create", "autre.be", "--pass", STRONG, "--login", "revenant")
    old = _deliver(cluster, "revenant", "revenant@autre.be", "autre.be", "moses")
    moses.stop()
    try:
        cli("user", "delete", "autre.be", "revenant", "--yes")
        # The same login again would get the old Maildir, with the old mail in it: not
        # until the holding server has retired it.
        refused = cli(
            "user", "create", "autre.be", "--pass", STRONG, "--login", "revenant", ok=False
        )
        assert refused.code == 65 and "still removing its mail" in refused.err, refused.err
        assert moses.maildir("revenant", "autre.be").exists()
    finally:
        moses.start()
    wait_until(lambda: not moses.maildir("revenant", "autre.be").exists(), "retired at start")
    cli("user", "create", "autre.be", "--pass", STRONG, "--login", "revenant")
    new = _deliver(cluster, "revenant", "revenant@autre.be", "autre.be", "moses")
    kept = moses.messages("revenant", "autre.be")
    assert any(new.encode() in m for m in kept) and not any(old.encode() in m for m in kept)


def test_a_quota_changed_on_another_server_is_written_where_the_mailbox_lives(
    cluster: Cluster,
) -> None:
    moses = cluster["moses"]
    _deliver(cluster, "autre0001", "info@autre.be", "autre.be", "moses")
    size_file = moses.maildir("autre0001", "autre.be") / "maildirsize"

    def limit() -> str:
        return size_file.read_text().splitlines()[0]

    for quota, line in (("50M", f"{50 * 1024 * 1024}S"), ("unlimited", "0S")):
        cluster.cli("user", "modify", "autre.be", "autre0001", "--quota", quota)
        wait_until(lambda line=line: limit() == line, f"maildirsize saying {line} on moses")
    assert not cluster["maximusconfessor"].maildir("autre0001", "autre.be").exists()


@pytest.fixture(autouse=True)
def _every_node_running(cluster: Cluster) -> None:
    """A test here stops moses: the next test of the session finds it running."""
    yield
    for node in cluster.nodes.values():
        if node.served is None:
            node.start()
