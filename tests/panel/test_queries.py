"""Query-count guards: a page costs the same number of SQL queries whether it shows 3
rows or 40 (no query per row), and stays under a small fixed budget."""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courriel.accounts.services.aliases import create_alias
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.api.tokens import create_token
from tests.fixtures.accounts import STRONG, make_customer
from tests.fixtures.panel import Admin, signed_in

OWNER_PAGES = [
    "/d/grand.be/",
    "/d/grand.be/details/",
    "/d/grand.be/users/",
    "/d/grand.be/users/new/",
    "/d/grand.be/user/grand0001/",
    "/d/grand.be/passwords/",
    "/d/grand.be/aliases/",
    "/d/grand.be/alias/alias1/",
    "/d/grand.be/audit/",
    "/d/grand.be/statistics/",
    "/tokens/",
    "/me/",
]
PROVIDER_PAGES = [
    "/",
    "/provider/domains/",
    "/provider/plans/",
    "/provider/servers/",
    "/provider/audit/",
    "/provider/statistics/",
    "/tokens/",
]
BUDGET = 20


def queries(client, url: str) -> int:  # type: ignore[no-untyped-def]
    cache.clear()  # the disk usage is cached for a minute: count its query every time
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def grow(customer, start: int, count: int) -> None:  # type: ignore[no-untyped-def]
    for n in range(start, start + count):
        create_mailbox(
            customer.actor,
            customer.domain,
            real_name=f"Person {n}",
            password=STRONG,
            addresses=[f"extra{n}"],
        )
        create_alias(
            customer.actor,
            customer.domain,
            f"alias{n}",
            mailboxes=[customer.owner.login],
            forward_to=[f"p{n}@example.org"],
        )
        create_token(customer.actor, f"token {n}")


def test_owner_pages_cost_the_same_with_3_or_40_rows(provider, servers) -> None:  # type: ignore[no-untyped-def]
    grand = make_customer(provider, "grand.be", plan="large")
    grow(grand, 1, 3)
    browser = signed_in(grand.owner)
    few = {url: queries(browser, url) for url in OWNER_PAGES}
    grow(grand, 4, 37)
    many = {url: queries(browser, url) for url in OWNER_PAGES}
    assert many == few
    assert max(many.values()) <= BUDGET, many


def test_provider_pages_cost_the_same_with_3_or_30_domains(
    provider,
    servers,
    admin: Admin,  # type: ignore[no-untyped-def]
) -> None:
    from tests.fixtures.panel import Browser

    browser = Browser()
    browser.force_login(admin.user, backend="django.contrib.auth.backends.ModelBackend")
    for n in range(3):
        make_customer(provider, f"few{n}.be", plan="simple")
    few = {url: queries(browser, url) for url in PROVIDER_PAGES}
    for n in range(27):
        make_customer(provider, f"many{n}.be", plan="simple")
    many = {url: queries(browser, url) for url in PROVIDER_PAGES}
    assert many == few
    assert max(many.values()) <= BUDGET, many
