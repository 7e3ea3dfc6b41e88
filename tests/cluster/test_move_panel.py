"""A domain move from the provider's panel (issue 15): the form on the domain's page,
the progress of the move under way (the page reloads itself), cancelling it; the
owner has no such page."""

from __future__ import annotations

from courriel.accounts.models import HostingServer
from courriel.cluster.identity import uses_postgresql
from courriel.cluster.models import DomainMove
from tests.fixtures.accounts import Customer
from tests.fixtures.cluster import running_nodes
from tests.fixtures.panel import Browser


def test_the_provider_moves_a_domain_from_its_page(
    provider_browser: Browser, owner_browser: Browser, monsite: Customer
) -> None:
    source = monsite.domain.server
    target = HostingServer.objects.exclude(pk=source.pk).first()
    assert target is not None
    running_nodes(source, target)
    assert "/d/monsite.be/move/" in provider_browser.text("/d/monsite.be/details/")
    assert owner_browser.get("/d/monsite.be/move/").status_code == 404
    assert "/d/monsite.be/move/" not in owner_browser.text("/d/monsite.be/details/")
    page = provider_browser.text("/d/monsite.be/move/")
    assert f'<option value="{target.name}">' in page
    assert f'<option value="{source.name}">' not in page  # where it is already
    response = provider_browser.post("/d/monsite.be/move/", {"to": target.name}, follow=True)
    page = response.content.decode()
    if not uses_postgresql():
        assert "PostgreSQL" in page and not DomainMove.objects.exists()
        return
    assert "The move has begun." in page and 'http-equiv="refresh"' in page
    move = DomainMove.objects.get()
    DomainMove.objects.filter(pk=move.pk).update(bytes_total=200, bytes_done=50)
    page = provider_browser.text("/d/monsite.be/move/")
    assert 'value="25"' in page and "copying, 25%" in page
    assert owner_browser.post("/d/monsite.be/move/", {"cancel": "1"}).status_code == 404
    page = provider_browser.post("/d/monsite.be/move/", {"cancel": "1"}, follow=True)
    assert DomainMove.objects.get().cancel_requested
    assert "Cancel the move" not in page.content.decode()
