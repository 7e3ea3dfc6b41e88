"""Mail goes to the domain's node (issue 15): three hosting servers on one PostgreSQL,
the manual's customer monsite.be on maximusconfessor and a second one, autre.be, on
moses; vonmuenchhausen holds nothing. Any of them takes mail for any domain and the
copy lands once, on the node that holds the mailbox."""

from __future__ import annotations

import time
from pathlib import Path

from tests.fixtures.cluster import Cluster
from tests.fixtures.platform import message
from tests.fixtures.sink import Sink
from tests.fixtures.waiting import wait_until


def _stamp(label: str) -> bytes:
    return f"{label}-{time.time_ns()}".encode()


def test_mail_sent_to_every_node_lands_once_on_the_domain_node(cluster: Cluster) -> None:
    sent: list[tuple[bytes, str, str]] = []
    for node in cluster.nodes.values():
        for domain, home in (("monsite.be", "maximusconfessor"), ("autre.be", "moses")):
            stamp = _stamp(f"{node.name}-to-{domain}")
            node.send(
                "someone@example.org",
                [f"info@{domain}"],
                message("someone@example.org", [f"info@{domain}"], stamp.decode()),
            )
            sent.append((stamp, domain, home))
    login = {"monsite.be": "monsite0001", "autre.be": "autre0001"}
    for stamp, domain, home in sent:
        cluster.wait_copies(login[domain], domain, stamp, home)
    for stamp, domain, home in sent:
        holders = cluster.holders(login[domain], domain, stamp)
        assert holders == {name: int(name == home) for name in cluster.nodes}, (stamp, holders)
    # The Received trail says which node took it and which one stored it.
    [stored] = [
        m
        for m in cluster["moses"].messages("autre0001", "autre.be")
        if b"vonmuenchhausen-to-autre.be" in m
    ]
    assert b"vonmuenchhausen.all2all.test" in stored
    assert not (cluster["vonmuenchhausen"].data / "mail" / "autre.be").exists()


def test_a_copy_for_another_node_is_on_its_disk_when_the_sender_gets_250(
    cluster: Cluster,
) -> None:
    """Handed over before the answer: the accepting node says 250 only after the
    holding node did, so the copy is there at once and nothing waits in a queue."""
    accepting = cluster["maximusconfessor"]
    wait_until(  # a previous test's stopped node: its queued copies delivered first
        lambda: accepting.courriel("queue", "list", "--json").json == [],
        "the queue of maximusconfessor to empty",
    )
    stamps = [_stamp(f"direct-{i}") for i in range(3)]
    for stamp in stamps:
        accepting.send(
            "someone@example.org",
            ["info@autre.be"],
            message("someone@example.org", ["info@autre.be"], stamp.decode()),
        )
        holders = cluster.holders("autre0001", "autre.be", stamp)  # no waiting
        assert holders == {"maximusconfessor": 0, "moses": 1, "vonmuenchhausen": 0}, holders
    assert accepting.courriel("queue", "list", "--json").json == []


def test_a_stopped_node_gets_its_mail_when_it_is_back(cluster: Cluster) -> None:
    moses = cluster["moses"]
    moses.stop()
    try:
        stamps = [_stamp(f"while-down-{i}") for i in range(3)]
        for stamp in stamps:
            cluster["maximusconfessor"].send(
                "someone@example.org",
                ["info@autre.be"],
                message("someone@example.org", ["info@autre.be"], stamp.decode()),
            )
        queued = cluster["maximusconfessor"].courriel("queue", "list", "--json").json
        assert any("autre" in str(entry) for entry in queued)
    finally:
        moses.start()
    for stamp in stamps:
        cluster.wait_copies("autre0001", "autre.be", stamp, "moses")
    for stamp in stamps:
        assert cluster.holders("autre0001", "autre.be", stamp)["moses"] == 1
    wait_until(
        lambda: cluster["maximusconfessor"].courriel("queue", "list", "--json").json == [],
        "the queue of maximusconfessor to empty",
    )


def test_forwards_are_made_once_by_the_node_that_accepted_the_mail(
    cluster: Cluster, tmp_path: Path
) -> None:
    cli = cluster.cli
    cli("user", "forward", "autre.be", "autre0001", "--to", "autre@gmail.com")
    try:
        stamp = _stamp("forwarded")
        cluster["vonmuenchhausen"].send(
            "sender@example.org",
            ["info@autre.be"],
            message("sender@example.org", ["info@autre.be"], stamp.decode()),
        )
        cluster.wait_copies("autre0001", "autre.be", stamp, "moses")
        sink: Sink = cluster.sink  # type: ignore[attr-defined]
        [forwarded] = sink.wait_for(1, where=lambda m: stamp in m.content)
        assert forwarded.recipients == ["autre@gmail.com"]
        assert forwarded.sender.startswith("SRS0=")  # rewritten, as on one machine
        assert cluster.holders("autre0001", "autre.be", stamp)["moses"] == 1
    finally:
        cli("user", "forward", "autre.be", "autre0001", "--off")
