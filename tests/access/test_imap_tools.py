"""The same server through imap-tools, the high-level client many Python tools use."""

from __future__ import annotations

from imap_tools import AND, MailBox, MailBoxStartTls, MailMessageFlags

from tests.access.conftest import Access, message


def test_imap_tools_reads_flags_moves_and_deletes(access: Access) -> None:
    access.deliver(message("Facture", body="Votre facture de septembre."))
    access.deliver(message("Newsletter"))
    with MailBox("127.0.0.1", access.ports["imaps"], ssl_context=access.tls()).login(
        access.login, access.password
    ) as mailbox:
        subjects = [m.subject for m in mailbox.fetch(mark_seen=False)]
        assert subjects == ["Facture", "Newsletter"]
        found = list(mailbox.fetch(AND(subject="Facture")))
        assert found[0].text.strip() == "Votre facture de septembre."
        mailbox.flag(found[0].uid, MailMessageFlags.FLAGGED, True)
        assert MailMessageFlags.FLAGGED in next(mailbox.fetch(AND(uid=found[0].uid))).flags
        mailbox.move(mailbox.uids(AND(subject="Newsletter")), "Junk")
        assert [f.name for f in mailbox.folder.list() if "\\Junk" in f.flags] == ["Junk"]
        mailbox.folder.set("Junk")
        assert [m.subject for m in mailbox.fetch()] == ["Newsletter"]
        mailbox.delete(mailbox.uids())
        assert mailbox.folder.status("Junk")["MESSAGES"] == 0
        mailbox.folder.create("Projets/2024")
        assert mailbox.folder.exists("Projets/2024")
        mailbox.append(message("Brouillon"), "Drafts", flag_set=[MailMessageFlags.DRAFT])
        assert mailbox.folder.status("Drafts")["MESSAGES"] == 1


def test_imap_tools_over_starttls(strict_access: Access) -> None:
    access = strict_access
    access.deliver(message("Par STARTTLS"))
    with MailBoxStartTls("127.0.0.1", access.ports["imap"], ssl_context=access.tls()).login(
        access.address, access.password
    ) as mailbox:
        assert [m.subject for m in mailbox.fetch()] == ["Par STARTTLS"]
