"""The incoming-check settings through the services, the command line, the API and the
panel: who may change what, and bad input refused with a clear message."""

from __future__ import annotations

import pytest

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor
from courriel.audit.models import AuditEntry
from courriel.errors import NotFoundError, PermissionDeniedError, ValidationError
from courriel.inbound import services
from courriel.inbound.rules import domain_rules, mailbox_rules
from tests.fixtures.accounts import Customer
from tests.fixtures.api import Api
from tests.fixtures.panel import Browser
from tests.fixtures.processes import InProcess

pytestmark = pytest.mark.django_db


def test_the_owner_sets_a_mailboxs_spam_thresholds(monsite: Customer) -> None:
    login = monsite.owner.login
    shown = services.mailbox_spam(monsite.actor, "monsite.be", login)
    assert (shown.junk_score, shown.reject_score, shown.spam_filtering) == (None, None, True)
    changed = services.set_mailbox_spam(
        monsite.actor, "monsite.be", login, junk_score="4.5", reject_score=12
    )
    assert (changed.junk_score, changed.reject_score) == (4.5, 12.0)
    assert mailbox_rules(monsite.owner.pk).junk_score == 4.5  # what the mail plane reads
    assert AuditEntry.objects.filter(action="filter.mailbox", target=login).exists()
    back = services.set_mailbox_spam(monsite.actor, "monsite.be", login, junk_score="default")
    assert (back.junk_score, back.reject_score) == (None, 12.0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"junk_score": "lots"}, "junk_score"),
        ({"junk_score": "nan"}, "junk_score"),
        ({"reject_score": "1e9"}, "reject_score"),
        ({"junk_score": 10, "reject_score": 5}, "reject_score"),
    ],
)
def test_bad_thresholds_are_refused(monsite: Customer, changes: dict, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        services.set_mailbox_spam(monsite.actor, "monsite.be", monsite.owner.login, **changes)
    assert refused.value.field == field


def test_another_customer_cannot_see_or_touch_them(monsite: Customer, autre: Customer) -> None:
    with pytest.raises(NotFoundError):
        services.mailbox_spam(autre.actor, "monsite.be", monsite.owner.login)
    with pytest.raises(NotFoundError):
        services.set_mailbox_spam(autre.actor, "monsite.be", monsite.owner.login, junk_score=1)
    with pytest.raises(NotFoundError):
        services.domain_filtering(autre.actor, "monsite.be")


def test_only_the_provider_changes_the_dmarc_treatment(monsite: Customer, provider: Actor) -> None:
    assert services.domain_filtering(monsite.actor, "monsite.be").dmarc == "follow"
    with pytest.raises(PermissionDeniedError):
        services.set_domain_dmarc(monsite.actor, "monsite.be", "monitor")
    assert services.set_domain_dmarc(provider, "monsite.be", "quarantine").dmarc == "quarantine"
    assert domain_rules("monsite.be").dmarc == "quarantine"
    with pytest.raises(ValidationError):
        services.set_domain_dmarc(provider, "monsite.be", "ignore")


def test_cli(cli: InProcess, monsite: Customer) -> None:
    login = monsite.owner.login
    out = cli("filter", "mailbox", "monsite.be", login, "--junk-score", "5", "--json").json
    assert out["junk_score"] == 5.0 and out["reject_score"] is None
    assert "Junk folder from score  5" in cli("filter", "mailbox", "monsite.be", login).out
    bad = cli("filter", "mailbox", "monsite.be", login, "--reject-score", "x", ok=False)
    assert "is not a spam score" in bad.err
    assert cli("filter", "domain", "monsite.be", "--dmarc", "monitor", "--json").json["dmarc"] == (
        "monitor"
    )
    assert cli("filter", "mailbox", "nowhere.be", login, ok=False).code != 0


def test_api(owner_api: Api, provider_api: Api, monsite: Customer) -> None:
    login = monsite.owner.login
    path = f"/domains/monsite.be/mailboxes/{login}/spam"
    status, body = owner_api.patch(path, {"junk_score": 7})
    assert status == 200 and body["junk_score"] == 7.0
    assert owner_api.patch(path, {"junk_score": "x"})[0] == 422
    assert owner_api.patch(path, {"colour": "red"})[0] == 422
    assert owner_api.patch("/domains/monsite.be/filtering", {"dmarc": "monitor"})[0] == 403
    status, body = provider_api.patch("/domains/monsite.be/filtering", {"dmarc": "monitor"})
    assert status == 200 and body["dmarc"] == "monitor"
    assert owner_api.get("/domains/monsite.be/filtering")[1]["dmarc"] == "monitor"


def test_panel(owner_browser: Browser, monsite: Customer) -> None:
    login = monsite.owner.login
    page = owner_browser.text(f"/d/monsite.be/user/{login}/spam/")
    assert "Junk folder from score" in page
    response = owner_browser.post(
        f"/d/monsite.be/user/{login}/spam/", {"junk_score": "5.5", "reject_score": ""}
    )
    assert response.status_code == 302
    assert Mailbox.objects.get(login=login).spam.junk_score == 5.5
    refused = owner_browser.post(
        f"/d/monsite.be/user/{login}/spam/", {"junk_score": "9", "reject_score": "3"}
    )
    assert refused.status_code == 200
    assert "cannot be below the Junk folder score" in refused.content.decode()
    domain_page = owner_browser.text("/d/monsite.be/filtering/")
    assert "Only the hosting provider can change this." in domain_page
