"""Greylisting over the REST API with real tokens: the provider's status, lookup,
whitelists and purge; the owner's per-domain and per-mailbox switches and lookups of
mail to their own domains; the mailbox user's lookups of mail to their own addresses.
The same services and permissions as the panel and `courriel greylist`."""

from __future__ import annotations

from courriel.accounts.models import Mailbox
from courriel.audit.models import AuditEntry
from courriel.greylist.engine import Engine
from courriel.greylist.models import DomainGreylisting, MailboxGreylisting, WhitelistEntry
from tests.fixtures.accounts import Customer
from tests.fixtures.api import Api


def test_provider_status_and_lookup(provider_api: Api, greylist_traffic: Engine) -> None:
    status, shown = provider_api.get("/greylist/status")
    assert status == 200
    assert shown["total"]["deferred"] == 3 and shown["total"]["passed_retry"] == 1
    assert (shown["pending"], shown["trusted"]) == (2, 1)
    assert shown["delay_seconds"] == 900 and shown["ipv4_prefix"] == 24
    status, found = provider_api.get("/greylist/lookup", sender="alice@example.org")
    assert status == 200, found
    assert found["summary"].startswith("1 message(s) are waiting for the sending server")
    (alice,) = found["triplets"]
    assert alice["state"] == "waiting" and alice["accept_after"] and alice["retry_until"]
    status, carol = provider_api.get("/greylist/lookup", recipient="autresite.be")
    assert [t["sender"] for t in carol["triplets"]] == ["carol@example.com"]
    status, refused = provider_api.get("/greylist/lookup")
    assert status == 400 and "Give a sender, a recipient or a client IP" in refused["detail"]
    status, bad = provider_api.get("/greylist/lookup", client_ip="nope")
    assert status == 400 and bad["field"] == "client_ip"
    status, purged = provider_api.post("/greylist/purge")
    assert status == 200 and purged == {"triplets": 0, "networks": 0}


def test_provider_edits_the_whitelists(provider_api: Api) -> None:
    status, shipped = provider_api.get("/greylist/whitelist", kind="client", limit=500)
    assert status == 200 and shipped["count"] > 0
    assert {e["source"] for e in shipped["items"]} == {"default"}
    status, entry = provider_api.post(
        "/greylist/whitelist", {"kind": "client", "value": "192.0.2.0/24", "comment": "#42"}
    )
    assert status == 201 and entry["value"] == "192.0.2.0/24" and entry["added_by"] == "api:admin"
    status, again = provider_api.post(
        "/greylist/whitelist", {"kind": "client", "value": "192.0.2.0/24"}
    )
    assert status == 409 and "already in the client whitelist" in again["detail"]
    status, bad = provider_api.post("/greylist/whitelist", {"kind": "client", "value": "a b"})
    assert status == 400 and bad["field"] == "value"
    assert provider_api.post("/greylist/whitelist", {"kind": "odd", "value": "x"})[0] == 422
    status, own = provider_api.get("/greylist/whitelist", include_default=False)
    assert [e["value"] for e in own["items"]] == ["192.0.2.0/24"]

    status, imported = provider_api.post(
        "/greylist/whitelist/import",
        {"kind": "recipient", "text": "# ours\npostmaster@\nabuse@monsite.be\n", "source": "f"},
    )
    assert status == 200 and imported["added"] == 2 and imported["already_present"] == 0
    status, broken = provider_api.post(
        "/greylist/whitelist/import", {"kind": "client", "text": "10.0.0.1\nbad host!\n"}
    )
    assert status == 400 and "Nothing imported" in broken["detail"]

    status, removed = provider_api.delete("/greylist/whitelist/client/192.0.2.0/24")
    assert status == 200 and removed == {"deleted": ["192.0.2.0/24"]}
    assert provider_api.delete("/greylist/whitelist/client/192.0.2.0/24")[0] == 404
    assert sorted(WhitelistEntry.objects.values_list("value", flat=True)) == [
        "abuse@monsite.be",
        "postmaster@",
    ]
    assert AuditEntry.objects.filter(action__startswith="greylist.whitelist").count() == 3


def test_owner_switches_greylisting_for_domain_and_mailbox(
    owner_api: Api, provider_api: Api, monsite: Customer, info: Mailbox
) -> None:
    status, shown = owner_api.get("/domains/monsite.be/greylisting")
    assert status == 200 and shown["enabled"] is True and shown["delay_seconds"] == 900
    status, off = owner_api.patch("/domains/monsite.be/greylisting", {"enabled": False})
    assert status == 200 and off["enabled"] is False
    status, refused = owner_api.patch("/domains/monsite.be/greylisting", {"delay": "5m"})
    assert status == 403 and "Only the hosting provider" in refused["detail"]
    status, delayed = provider_api.patch("/domains/monsite.be/greylisting", {"delay": "5m"})
    assert status == 200 and delayed["delay_seconds"] == 300 and delayed["delay_overridden"]
    assert delayed["enabled"] is False  # unchanged
    status, reset = provider_api.patch("/domains/monsite.be/greylisting", {"delay": None})
    assert reset["delay_overridden"] is False and reset["delay_seconds"] == 900

    url = f"/domains/monsite.be/mailboxes/{info.login}/greylisting"
    status, box = owner_api.get(url)
    assert status == 200 and box["enabled"] is True and box["effective"] is False
    status, box = owner_api.patch(url, {"enabled": False})
    assert status == 200 and box["enabled"] is False
    assert MailboxGreylisting.objects.get(mailbox=info).enabled is False
    assert owner_api.patch(url, {})[0] == 422


def test_owner_and_mailbox_user_look_up_their_own_mail_only(
    owner_api: Api, info_api: Api, greylist_traffic: Engine
) -> None:
    status, mine = owner_api.get("/greylist/lookup", recipient="monsite.be")
    assert status == 200 and {t["sender"] for t in mine["triplets"]} == {
        "alice@example.org",
        "bob@example.net",
    }
    status, theirs = owner_api.get("/greylist/lookup", recipient="autresite.be")
    assert status == 200 and theirs["triplets"] == []
    _, by_ip = owner_api.get("/greylist/lookup", client_ip="203.0.113.30")
    assert by_ip["triplets"] == []
    # info@monsite.be is monsite0001's address: alice's waiting message is theirs.
    status, own = info_api.get("/greylist/lookup", sender="alice@example.org")
    assert status == 200 and [t["recipient"] for t in own["triplets"]] == ["info@monsite.be"]
    _, other = info_api.get("/greylist/lookup", recipient="contact@monsite.be")
    assert other["triplets"] == []
    for api in (owner_api, info_api):
        assert api.get("/greylist/status")[0] == 403
        assert api.get("/greylist/whitelist")[0] == 403
        assert api.post("/greylist/whitelist", {"kind": "client", "value": "10.0.0.1"})[0] == 403
    assert info_api.patch("/domains/monsite.be/greylisting", {"enabled": False})[0] == 404
    assert not WhitelistEntry.objects.exists() and not DomainGreylisting.objects.exists()


def test_owner_a_cannot_touch_owner_b(owner_api: Api, autre: Customer) -> None:
    from courriel.accounts.services.mailboxes import create_mailbox
    from tests.fixtures.accounts import STRONG

    b_box = create_mailbox(autre.actor, autre.domain, password=STRONG).mailbox
    assert owner_api.get("/domains/autresite.be/greylisting")[0] == 404
    assert owner_api.patch("/domains/autresite.be/greylisting", {"enabled": False})[0] == 404
    for domain in ("autresite.be", "monsite.be"):
        url = f"/domains/{domain}/mailboxes/{b_box.login}/greylisting"
        assert owner_api.get(url)[0] == 404
        assert owner_api.patch(url, {"enabled": False})[0] == 404
    assert not DomainGreylisting.objects.exists() and not MailboxGreylisting.objects.exists()


def test_the_answer_follows_the_readers_language(
    provider_api: Api, greylist_traffic: Engine
) -> None:
    provider_api.headers["HTTP_ACCEPT_LANGUAGE"] = "nl-BE"
    status, found = provider_api.get("/greylist/lookup", sender="alice@example.org")
    assert status == 200
    assert found["summary"].startswith("1 bericht wacht op een nieuwe poging")
    assert "werd door greylisting uitgesteld" in found["triplets"][0]["explanation"]
    assert found["triplets"][0]["state"] == "waiting"  # values stay the API's own
    provider_api.headers["HTTP_ACCEPT_LANGUAGE"] = "fr-BE"
    status, refused = provider_api.get("/greylist/lookup")
    assert status == 400 and refused["detail"].startswith("Indiquez l'expéditeur")
