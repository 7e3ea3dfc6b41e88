"""Spam filtering with a real rspamd (a private instance, its own configuration and
loopback ports): GTUBE is refused, a probable spam goes to Junk, users teach rspamd
by moving mail into and out of Junk, and an unreachable rspamd loses no mail."""

from __future__ import annotations

import imaplib
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.platform import STRONG, insecure_context
from tests.fixtures.rspamd import PROBABLE_SPAM_SUBJECT, PrivateRspamd
from tests.inbound.conftest import EXAMPLE_IP, World, inbound_world, letter, signed
from tests.inbound.test_authentication import top_header, wait_in_junk

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
pytestmark = pytest.mark.slow


def rspamd_env(instance: PrivateRspamd) -> dict[str, str]:
    return {
        "COURRIEL_FILTER_RSPAMD_URL": instance.url,
        "COURRIEL_FILTER_RSPAMD_CONTROLLER_URL": instance.controller_url,
        "COURRIEL_FILTER_TIMEOUT": "5s",
    }


@pytest.fixture(scope="module")
def spam_world(tmp_path_factory: pytest.TempPathFactory, rspamd: PrivateRspamd) -> Iterator[World]:
    with inbound_world(tmp_path_factory.mktemp("spam"), rspamd_env(rspamd)) as found:
        yield found


def send(world: World, recipient: str, subject: str, body: str | None = None) -> None:
    message = signed(
        letter("Alice <alice@example.org>", recipient, subject, **({"body": body} if body else {})),
        world.example_key,
    )
    world.send(EXAMPLE_IP, "alice@example.org", recipient, message)


def test_gtube_is_refused(spam_world: World) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(spam_world, "compta@monsite.be", "gtube", body=GTUBE)
    assert refused.value.smtp_code == 554
    assert refused.value.smtp_error.startswith(b"5.7.1 Message refused as spam")


def test_ham_is_delivered_with_its_spam_status(spam_world: World) -> None:
    send(spam_world, "compta@monsite.be", "club news")
    copy = spam_world.platform.wait_message("monsite0002", b"club news")
    assert top_header(copy, "X-Spam-Status").startswith("No, score=")


def imap(world: World) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", world.platform.port("imap"))
    client.starttls(ssl_context=insecure_context())
    client.login("monsite0001", STRONG)
    return client


def wait_for(condition, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never met")
        time.sleep(0.1)


def test_probable_spam_goes_to_junk_and_moving_it_out_teaches_rspamd(
    spam_world: World, rspamd: PrivateRspamd
) -> None:
    subject = f"{PROBABLE_SPAM_SUBJECT} offre exceptionnelle"
    send(spam_world, "info@monsite.be", subject)
    copy = wait_in_junk(spam_world, "monsite0001", subject.encode())
    assert top_header(copy, "X-Spam") == "Yes"
    assert top_header(copy, "X-Spam-Status").startswith("Yes, score=")
    assert 'action="add header"' in top_header(copy, "X-Spam-Status")
    # Kept in Junk: not forwarded to Gmail.
    send(spam_world, "info@monsite.be", "plain news for gmail")
    spam_world.platform.sink.wait_for(1, where=lambda m: b"plain news for gmail" in m.content)
    assert not [m for m in spam_world.platform.sink.messages if subject.encode() in m.content]

    hams, spams = rspamd.learned("BAYES_HAM"), rspamd.learned("BAYES_SPAM")
    client = imap(spam_world)
    try:
        client.select("Junk")
        _, found = client.uid("SEARCH", "SUBJECT", "offre")
        [uid] = found[0].split()
        moved = client.uid("MOVE", uid, "INBOX")
        assert moved[0] == "OK", moved  # "this is not spam"
        wait_for(lambda: rspamd.learned("BAYES_HAM") > hams)
        # And the other way: a message moved into Junk is learnt as spam.
        client.select("INBOX")
        _, found = client.uid("SEARCH", "SUBJECT", '"plain news for gmail"')
        [uid] = found[0].split()
        assert client.uid("COPY", uid, "Junk")[0] == "OK"
        wait_for(lambda: rspamd.learned("BAYES_SPAM") > spams)
    finally:
        client.logout()


def test_the_domain_switch_turns_spam_filtering_off(spam_world: World) -> None:
    courriel = spam_world.platform.courriel
    courriel("domain", "modify", "monsite.be", "--features", "mail dns")
    try:
        send(spam_world, "compta@monsite.be", "gtube when filtering is off", body=GTUBE)
        copy = spam_world.platform.wait_message("monsite0002", b"gtube when filtering is off")
        assert b"X-Spam-Status" not in copy
    finally:
        courriel("domain", "modify", "monsite.be", "--features", "mail dns spam")


def test_rspamd_stopped_mail_is_still_accepted_and_says_so(
    tmp_path: Path, rspamd_dns: object
) -> None:
    instance = PrivateRspamd(tmp_path / "rspamd", rspamd_dns.nameserver).start()  # type: ignore[attr-defined]
    try:
        with inbound_world(tmp_path / "world", rspamd_env(instance)) as world:
            send(world, "compta@monsite.be", "scanned while running")
            scanned = world.platform.wait_message("monsite0002", b"scanned while running")
            assert top_header(scanned, "X-Spam-Status").startswith("No, score=")
            instance.stop()
            send(world, "compta@monsite.be", "while rspamd is stopped", body=GTUBE)
            copy = world.platform.wait_message("monsite0002", b"while rspamd is stopped")
            assert top_header(copy, "X-Spam-Status") == (
                "Unknown, not scanned (rspamd unreachable)"
            )
    finally:
        instance.stop()


def test_a_mailboxs_own_threshold_sends_lower_scores_to_junk(spam_world: World) -> None:
    courriel = spam_world.platform.courriel
    courriel("filter", "mailbox", "monsite.be", "monsite0002", "--junk-score", "-50")
    try:
        send(spam_world, "compta@monsite.be", "ham for a strict mailbox")
        copy = wait_in_junk(spam_world, "monsite0002", b"ham for a strict mailbox")
        assert top_header(copy, "X-Spam") == "Yes"
    finally:
        courriel("filter", "mailbox", "monsite.be", "monsite0002", "--junk-score", "default")
