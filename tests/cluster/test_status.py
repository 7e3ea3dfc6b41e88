"""The provider sees every hosting server (issue 15): `courriel status --all` on any of
them lists each one with its services, queue, disk, last backup and version, and
whether it answers; System Information shows the same from their heartbeats, a
server that stopped answering as such within a minute."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from courriel.accounts.models import HostingServer
from courriel.cluster.models import Node
from tests.fixtures.cluster import Cluster
from tests.fixtures.panel import Browser
from tests.fixtures.waiting import wait_until


def test_status_all_lists_every_server_and_one_that_stops_answering(cluster: Cluster) -> None:
    rows = {row["name"]: row for row in cluster.cli("status", "--all", "--json").json}
    assert set(rows) == set(cluster.nodes)
    for name, row in rows.items():
        assert row["state"] == "running" and row["answers"] is True, row
        assert row["version"] and "smtp" in row["services"] and "imaps" in row["services"]
        assert row["disk"]["free"] > 0 and "entries" in row["queue"]
        assert row["this"] == (name == "maximusconfessor")
    assert rows["moses"]["domains"] == 1 and rows["vonmuenchhausen"]["domains"] == 0
    table = cluster.cli("status", "--all").out
    assert "vonmuenchhausen" in table and "(this one)" in table

    cluster["vonmuenchhausen"].kill()  # as a crash or a cut cable would
    try:
        rows = {row["name"]: row for row in cluster.cli("status", "--all", "--json").json}
        assert rows["vonmuenchhausen"]["state"] == "not answering"
        assert rows["vonmuenchhausen"]["answers"] is False
        assert rows["moses"]["state"] == "running"
        # Asked on another server, the same.
        rows = {
            row["name"]: row for row in cluster["moses"].courriel("status", "--all", "--json").json
        }
        assert rows["vonmuenchhausen"]["state"] == "not answering"
    finally:
        cluster["vonmuenchhausen"].start()
    wait_until(
        lambda: (
            {r["name"]: r for r in cluster.cli("status", "--all", "--json").json}[
                "vonmuenchhausen"
            ]["state"]
            == "running"
        ),
        "vonmuenchhausen running again",
    )


def test_system_information_shows_each_server_from_its_heartbeat(
    provider_browser: Browser,
) -> None:
    now = timezone.now()
    states = {
        "maximusconfessor": now - timedelta(seconds=5),  # beat a moment ago
        "moses": now - timedelta(seconds=50),  # silent for 50 s: not answering
    }
    for name, beat in states.items():
        server = HostingServer.objects.create(name=name, hostname=f"{name}.all2all.test")
        Node.objects.create(
            server=server,
            secret_hash="0" * 64,
            address="192.0.2.1",
            cluster_port=10025,
            web_port=443,
            version="1.2.3",
            heartbeat_at=beat,
            status={"services": {"smtp": "0.0.0.0:25"}, "disk": {"free": 5 << 30}},
        )
    HostingServer.objects.create(name="newton", hostname="newton.all2all.test")
    page = provider_browser.text("/")
    assert 'data-node="maximusconfessor" data-state="running"' in page
    assert 'data-node="moses" data-state="not answering"' in page
    assert 'data-node="newton" data-state="not started"' in page
    assert "5 GB free" in page and "smtp" in page
