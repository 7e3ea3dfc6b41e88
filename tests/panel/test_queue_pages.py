"""The provider's outbound queue in the panel: what waits for whom and why, one entry
with its headers, retry now, delete with confirmation; the same services as
`courriel queue`."""

from __future__ import annotations

import html
import time

from courriel.audit.models import AuditEntry
from courriel.outbound.spool import Entry, get_spool
from tests.fixtures.panel import Browser

QUEUE = "/provider/queue/"


def queued(sender: str, *recipients: str, error: str = "", later: float = 0) -> Entry:
    spool = get_spool()
    entry = spool.enqueue(
        sender,
        list(recipients),
        b"From: info@monsite.be\r\nSubject: Vacances\r\n\r\nBody\r\n",
        kind="forward",
    )
    if error:
        entry.attempts = 3
        entry.last_error = error
        entry.recipients[0].last_error = error
        entry.created -= 7200
        entry.next_attempt = time.time() + later
        spool.save(entry)
    return entry


def test_the_queue_lists_recipients_age_and_last_error(provider_browser: Browser) -> None:
    stuck = queued(
        "SRS0=ab12=TT=example.org=alice@monsite.be",
        "monsite@gmail.com",
        error="451 4.7.1 Greylisted, try again later",
        later=1800,
    )
    queued("", "boss@example.org")
    page = provider_browser.text(QUEUE)
    assert "2 messages wait to be delivered to other servers." in page
    assert "monsite@gmail.com" in page and "boss@example.org" in page
    assert "451 4.7.1 Greylisted, try again later" in page
    assert "2\u00a0hours ago" in page  # its age
    assert "in 29\u00a0minutes" in page or "in 30\u00a0minutes" in page  # the next try
    assert "&lt;&gt;" in page  # the null sender of a notice
    assert f'href="/provider/queue/entry/{stuck.id}/"' in page
    assert 'aria-current="page">Outbound queue' in page


def test_one_entry_shows_its_recipients_and_headers(provider_browser: Browser) -> None:
    entry = queued("alice@monsite.be", "a@gmail.com", "b@gmail.com", error="Connection refused")
    page = provider_browser.text(f"/provider/queue/entry/{entry.id}/")
    for text in ("a@gmail.com", "b@gmail.com", "Connection refused", "Subject: Vacances"):
        assert text in page, text
    assert "Body" not in page  # headers only
    assert provider_browser.get("/provider/queue/entry/NOPE/").status_code == 404


def test_retry_now(provider_browser: Browser) -> None:
    first = queued("a@monsite.be", "x@gmail.com", error="timeout", later=3600)
    second = queued("a@monsite.be", "y@gmail.com", error="timeout", later=3600)
    done = provider_browser.post(QUEUE + "retry/", {"selected": [first.id]}, follow=True)
    assert "1 queued message is due now." in done.content.decode()
    spool = get_spool()
    assert spool.load(first.id).next_attempt <= time.time()  # type: ignore[union-attr]
    assert spool.load(second.id).next_attempt > time.time()  # type: ignore[union-attr]
    everything = provider_browser.post(QUEUE + "retry/", {"all": "yes"}, follow=True)
    assert "2 queued messages are due now." in everything.content.decode()
    assert spool.load(second.id).next_attempt <= time.time()  # type: ignore[union-attr]
    assert AuditEntry.objects.filter(action="queue.retry").count() == 2
    nothing = provider_browser.post(QUEUE + "retry/", {}, follow=True)
    assert "Select the queued messages to retry first." in nothing.content.decode()
    gone = provider_browser.post(QUEUE + "retry/", {"selected": ["NOPE"]}, follow=True)
    assert "No queue entry 'NOPE'" in html.unescape(gone.content.decode())


def test_delete_asks_first_and_lists_what_goes(provider_browser: Browser) -> None:
    doomed = queued("spammer@monsite.be", "victim@gmail.com")
    kept = queued("a@monsite.be", "friend@gmail.com")
    asked = provider_browser.post(QUEUE + "delete/", {"selected": [doomed.id]})
    page = asked.content.decode()
    assert asked.status_code == 200 and "their senders get no bounce" in page
    assert f"{doomed.id} from spammer@monsite.be to victim@gmail.com" in page
    assert get_spool().load(doomed.id) is not None  # nothing deleted yet
    done = provider_browser.post(
        QUEUE + "delete/", {"selected": [doomed.id], "confirm": "yes"}, follow=True
    )
    assert "1 queued message deleted." in done.content.decode()
    assert get_spool().load(doomed.id) is None and get_spool().load(kept.id) is not None
    entry = AuditEntry.objects.get(action="queue.delete")
    assert entry.target == doomed.id and entry.actor == "admin"
    nothing = provider_browser.post(QUEUE + "delete/", {}, follow=True)
    assert "Select the queued messages to delete first." in nothing.content.decode()
