"""Greylisting in the panel (chapter 13): the provider's counts and settings, the search
that answers a customer's "why was my mail delayed, and when will it arrive?",
whitelist editing and postgrey imports; the owner's per-domain and per-mailbox
switches and the same search, limited to their own domains. The same services as
`courriel greylist`."""

from __future__ import annotations

import html

from django.core.files.uploadedfile import SimpleUploadedFile

from courriel.accounts.models import Mailbox
from courriel.audit.models import AuditEntry
from courriel.greylist.engine import Engine
from courriel.greylist.models import DomainGreylisting, MailboxGreylisting, WhitelistEntry
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Browser, signed_in
from tests.panel.test_mailbox_pages import edit_form

STATUS = "/provider/greylisting/"
WHITELIST = "/provider/greylisting/whitelist/"


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.content.decode())


def test_status_shows_counts_and_settings(
    provider_browser: Browser, greylist_traffic: Engine
) -> None:
    page = html.unescape(provider_browser.text(STATUS))
    assert 'aria-current="page">Greylisting' in page
    assert "is refused for 15 minutes" in page  # the configured delay
    # Deferred: bob's first attempt, alice's and carol's; one passed after its retry.
    assert '<th scope="row">Deferred (first attempts)</th><td class="num">3</td>' in page
    assert '<th scope="row">Accepted after a retry</th><td class="num">1</td>' in page
    assert "<dt>Waiting for a retry</dt><dd>2</dd>" in page
    assert "<dt>Trusted triplets</dt><dd>1</dd>" in page
    for setting in ("<dd>2 days</dd>", "35 days without mail", "IPv4 /24, IPv6 /64"):
        assert setting in page, setting


def test_why_was_my_mail_delayed(provider_browser: Browser, greylist_traffic: Engine) -> None:
    page = html.unescape(provider_browser.text(STATUS, sender="Alice@Example.org"))
    assert "1 message(s) are waiting for the sending server to retry" in page
    assert "192.0.2.10" in page and "waiting for a retry" in page
    assert "bob@example.net" not in page
    trusted = html.unescape(provider_browser.text(STATUS, recipient="contact@monsite.be"))
    assert "passed greylisting and are trusted" in trusted and "after 6 minutes" in trusted
    nothing = html.unescape(provider_browser.text(STATUS, sender="nobody@example.org"))
    assert "Greylisting has no record of this mail" in nothing
    bad = html.unescape(provider_browser.text(STATUS, client_ip="not-an-ip"))
    assert "'not-an-ip' is not an IP address" in bad
    assert "Please correct the errors below." in bad


def test_whitelist_add_remove_with_confirmation(provider_browser: Browser) -> None:
    page = html.unescape(provider_browser.text(WHITELIST))
    assert "Shipped default list" in page and "<details>" in page  # collapsed
    added = provider_browser.post(
        WHITELIST,
        {"kind": "client", "value": "192.0.2.0/24", "comment": "ticket 42"},
        follow=True,
    )
    assert "192.0.2.0/24 added to the whitelist" in text(added)
    assert "ticket 42" in text(added)
    again = provider_browser.post(WHITELIST, {"kind": "client", "value": "192.0.2.0/24"})
    assert "192.0.2.0/24 is already in the client whitelist." in text(again)
    wrong = provider_browser.post(WHITELIST, {"kind": "client", "value": "bad host!"})
    assert "is not a valid client whitelist entry" in text(wrong)
    provider_browser.post(WHITELIST, {"kind": "sender", "value": "example.org"})
    assert WhitelistEntry.objects.count() == 2

    remove = WHITELIST + "remove/"
    asked = provider_browser.post(remove, {"selected": ["client 192.0.2.0/24"]})
    assert "Mail matching these entries is greylisted again:" in text(asked)
    assert WhitelistEntry.objects.count() == 2  # nothing before the confirmation
    done = provider_browser.post(
        remove, {"selected": ["client 192.0.2.0/24"], "confirm": "yes"}, follow=True
    )
    assert "1 whitelist entry removed." in text(done)
    assert list(WhitelistEntry.objects.values_list("value", flat=True)) == ["example.org"]
    assert AuditEntry.objects.filter(action="greylist.whitelist.remove").count() == 1
    nothing = provider_browser.post(remove, {}, follow=True)
    assert "Select the whitelist entries to remove first." in text(nothing)
    gone = provider_browser.post(
        remove, {"selected": ["client 10.0.0.0/8"], "confirm": "yes"}, follow=True
    )
    assert "10.0.0.0/8 is not in the client whitelist." in text(gone)


def test_import_a_postgrey_file(provider_browser: Browser) -> None:
    url = WHITELIST + "import/"
    upload = SimpleUploadedFile(
        "whitelist_clients",
        b"# postgrey whitelist\n192.0.2.7\n/^mail\\d+\\.example\\.com$/\nbigsender.example\n",
    )
    done = provider_browser.post(url, {"kind": "client", "upload": upload})
    assert "3 entries imported" in text(done) and "From whitelist_clients" in text(done)
    pasted = provider_browser.post(url, {"kind": "recipient", "text": "postmaster@\nabuse@\n"})
    assert "2 entries imported" in text(pasted)
    repeated = provider_browser.post(url, {"kind": "client", "text": "192.0.2.7\n"})
    assert "1 entry was already in the whitelist" in text(repeated)
    broken = provider_browser.post(url, {"kind": "client", "text": "192.0.2.8\nnot valid!\n"})
    assert "Nothing imported: 1 invalid line(s)" in text(broken)
    assert not WhitelistEntry.objects.filter(value="192.0.2.8").exists()
    empty = provider_browser.post(url, {"kind": "client", "text": "  "})
    assert "Paste the file's lines or choose the file." in text(empty)
    assert WhitelistEntry.objects.count() == 5


def test_purge(provider_browser: Browser, greylist_traffic: Engine) -> None:
    done = provider_browser.post(STATUS + "purge/", follow=True)
    assert "Expired entries purged: 0 triplets, 0 networks." in text(done)


def test_provider_pages_are_the_providers(owner_browser: Browser, info_browser: Browser) -> None:
    for browser in (owner_browser, info_browser):
        for url in (STATUS, WHITELIST, WHITELIST + "import/"):
            assert browser.get(url).status_code == 404, url
        assert browser.post(WHITELIST, {"kind": "client", "value": "10.0.0.1"}).status_code == 404
        assert browser.post(STATUS + "purge/").status_code == 404
    assert not WhitelistEntry.objects.exists()


def test_owner_turns_greylisting_off_for_the_domain(
    owner_browser: Browser, monsite: Customer
) -> None:
    details = "/d/monsite.be/details/"
    page = owner_browser.text(details)
    assert 'id="greylisting"' in page and 'name="enabled"' in page
    assert 'name="delay"' not in page  # the provider's
    done = owner_browser.post(details.replace("details/", "greylisting/switch/"), {}, follow=True)
    assert "Greylisting is off for monsite.be: its mail is never delayed." in text(done)
    assert DomainGreylisting.objects.get(domain=monsite.domain).enabled is False
    # A delay sent by the owner is ignored: the field is not theirs.
    owner_browser.post(
        "/d/monsite.be/greylisting/switch/", {"enabled": "on", "delay": "1"}, follow=True
    )
    setting = DomainGreylisting.objects.get(domain=monsite.domain)
    assert setting.enabled is True and setting.delay is None


def test_provider_sets_a_domains_delay(provider_browser: Browser, monsite: Customer) -> None:
    switch = "/d/monsite.be/greylisting/switch/"
    provider_browser.post(switch, {"enabled": "on", "delay": "5m"})
    assert DomainGreylisting.objects.get(domain=monsite.domain).delay == 300
    page = html.unescape(provider_browser.text("/d/monsite.be/details/"))
    assert 'name="delay" value="300"' in page and "for 5 minutes" in page
    wrong = provider_browser.post(switch, {"enabled": "on", "delay": "9d"}, follow=True)
    assert "The delay must be between 0 and the retry window" in text(wrong)
    provider_browser.post(switch, {"enabled": "on", "delay": ""})
    assert DomainGreylisting.objects.get(domain=monsite.domain).delay is None


def test_owner_turns_greylisting_off_for_one_mailbox(
    owner_browser: Browser, monsite: Customer, info: Mailbox
) -> None:
    url = f"/d/monsite.be/user/{info.login}/"
    page = owner_browser.text(url)
    assert 'id="id_greylisting" checked' in page
    form = edit_form(info)
    del form["greylisting"]  # unticked
    saved = owner_browser.post(url, form, follow=True)
    assert saved.status_code == 200 and "saved" in text(saved), text(saved)
    assert MailboxGreylisting.objects.get(mailbox=info).enabled is False
    assert AuditEntry.objects.filter(action="greylist.mailbox").count() == 1
    owner_browser.post(url, edit_form(info, real_name="Information", greylisting=None))
    assert AuditEntry.objects.filter(action="greylist.mailbox").count() == 1  # unchanged
    details = html.unescape(owner_browser.text("/d/monsite.be/details/"))
    assert f"Greylisting is off for these mailboxes: {info.login}" in details
    owner_browser.post(url, edit_form(info))
    assert MailboxGreylisting.objects.get(mailbox=info).enabled is True


def test_owner_looks_up_mail_to_their_own_domain_only(
    owner_browser: Browser, greylist_traffic: Engine
) -> None:
    url = "/d/monsite.be/greylisting/"
    page = html.unescape(owner_browser.text(url))
    assert 'value="monsite.be"' in page  # the recipient is prefilled
    mine = html.unescape(owner_browser.text(url, recipient="monsite.be"))
    assert "alice@example.org" in mine and "bob@example.net" in mine
    assert "carol@example.com" not in mine
    theirs = html.unescape(owner_browser.text(url, sender="carol@example.com"))
    assert "info@autresite.be" not in theirs and "203.0.113.30" not in theirs
    assert "Greylisting has no record of this mail" in theirs


def test_owner_a_cannot_reach_owner_b(
    owner_browser: Browser, autre: Customer, greylist_traffic: Engine
) -> None:
    from courriel.accounts.services.mailboxes import create_mailbox
    from tests.fixtures.accounts import STRONG

    b_box = create_mailbox(autre.actor, autre.domain, password=STRONG).mailbox
    assert owner_browser.get("/d/autresite.be/greylisting/").status_code == 404
    switch = owner_browser.post("/d/autresite.be/greylisting/switch/", {})
    assert switch.status_code == 404
    assert owner_browser.get(f"/d/autresite.be/user/{b_box.login}/").status_code == 404
    assert owner_browser.get(f"/d/monsite.be/user/{b_box.login}/").status_code == 404
    assert not DomainGreylisting.objects.exists() and not MailboxGreylisting.objects.exists()
    b_owner = signed_in(autre.owner)
    assert b_owner.get("/d/autresite.be/greylisting/").status_code == 200


def test_the_pages_speak_french_and_dutch(
    provider_browser: Browser, greylist_traffic: Engine
) -> None:
    french = html.unescape(
        provider_browser.get(
            STATUS, {"sender": "alice@example.org"}, HTTP_ACCEPT_LANGUAGE="fr-BE"
        ).content.decode()
    )
    assert "<h1>Liste grise</h1>" in french and "refusé pendant 15 minutes" in french
    assert "attend une nouvelle tentative" in french and "<dd>35 jours sans courrier</dd>" in french
    dutch = html.unescape(
        provider_browser.get(WHITELIST, HTTP_ACCEPT_LANGUAGE="nl-BE").content.decode()
    )
    assert "Meegeleverde standaardlijst" in dutch and "Een vermelding toevoegen" in dutch


def test_the_lookup_answers_in_french_and_dutch(
    provider_browser: Browser, owner_browser: Browser, greylist_traffic: Engine
) -> None:
    """The services' sentences (summary, explanations, exemptions, errors) follow the
    reader's language; times stay UTC and say so."""
    provider_browser.post("/language/", {"language": "fr"})
    waiting = html.unescape(provider_browser.text(STATUS, sender="alice@example.org"))
    assert (
        "1 message attend une nouvelle tentative du serveur expéditeur ; une nouvelle "
        "tentative après le " in waiting
    )
    assert "a été refusée temporairement par la liste grise (1 fois jusqu'ici)" in waiting
    assert " UTC sera acceptée." in waiting
    trusted = html.unescape(provider_browser.text(STATUS, recipient="contact@monsite.be"))
    assert "1 chemin d'envoi a passé la liste grise et est de confiance" in trusted
    assert "Retardé de 6 minutes par la liste grise : première tentative le " in trusted
    provider_browser.post(WHITELIST, {"kind": "client", "value": "192.0.2.0/24"})
    again = text(provider_browser.post(WHITELIST, {"kind": "client", "value": "192.0.2.0/24"}))
    assert "192.0.2.0/24 est déjà dans la liste blanche des serveurs expéditeurs." in again
    exempt = html.unescape(provider_browser.text(STATUS, client_ip="192.0.2.10"))
    assert (
        "Le courrier de 192.0.2.10 ne passe jamais par la liste grise : entrée 192.0.2.0/24 "
        "de la liste blanche des serveurs expéditeurs." in exempt
    )
    bad = html.unescape(provider_browser.text(STATUS, client_ip="not-an-ip"))
    assert "'not-an-ip' n'est pas une adresse IP (p.ex. 192.0.2.7)." in bad

    owner_browser.post("/language/", {"language": "nl"})
    url = "/d/monsite.be/greylisting/"
    mine = html.unescape(owner_browser.text(url, recipient="monsite.be"))
    assert "1 bericht wacht op een nieuwe poging van de verzendende server" in mine
    assert "6 minuten vertraagd door greylisting: eerste poging op " in mine
    assert "werd door greylisting uitgesteld (tot nu toe 1 keer)" in mine
    nothing = html.unescape(owner_browser.text(url, sender="carol@example.com"))
    assert "Greylisting heeft geen spoor van deze mail" in nothing

    owner_browser.post("/language/", {"language": "en"})
    english = html.unescape(owner_browser.text(url, recipient="monsite.be"))
    assert "1 message(s) are waiting for the sending server to retry" in english
