"""A domain move through the REST API (issue 15): asked by the provider, followed
with its progress, cancelled before the switch; nobody else may. The work itself
is the target server's (tests/cluster/test_move.py moves real mail)."""

from __future__ import annotations

from courriel.accounts.models import HostingServer
from courriel.cluster.identity import uses_postgresql
from courriel.cluster.models import DomainMove
from tests.fixtures.accounts import Customer
from tests.fixtures.api import Api
from tests.fixtures.cluster import running_nodes


def test_the_provider_moves_a_domain_and_follows_it(
    provider_api: Api, owner_api: Api, monsite: Customer
) -> None:
    source = monsite.domain.server
    target = HostingServer.objects.exclude(pk=source.pk).first()
    assert target is not None
    running_nodes(source, target)
    assert owner_api.post("/domains/monsite.be/move", {"to": target.name})[0] == 403
    status, body = provider_api.post("/domains/monsite.be/move", {"to": target.name})
    if not uses_postgresql():  # one machine's database: refused, saying why
        assert status == 400 and "PostgreSQL" in str(body), body
        assert not DomainMove.objects.exists()
        return
    assert status == 202, body
    assert body["state"] == "copying" and body["target"] == target.name and body["percent"] == 0
    assert provider_api.post("/domains/monsite.be/move", {"to": source.name})[0] == 409
    assert provider_api.post("/domains/nope.be/move", {"to": target.name})[0] == 404
    DomainMove.objects.filter(pk=body["id"]).update(
        files_total=10, files_done=5, bytes_total=100, bytes_done=40
    )
    status, shown = provider_api.get(f"/moves/{body['id']}")
    assert status == 200 and shown["percent"] == 40 and shown["files_done"] == 5
    assert [m["id"] for m in provider_api.get("/moves", domain="monsite.be")[1]] == [body["id"]]
    assert owner_api.get("/moves")[0] == 403
    status, cancelled = provider_api.delete("/domains/monsite.be/move")
    assert status == 200 and cancelled["cancel_requested"] is True
    DomainMove.objects.filter(pk=body["id"]).update(state=DomainMove.SWITCHING)
    assert provider_api.delete("/domains/monsite.be/move")[0] == 409  # too late
