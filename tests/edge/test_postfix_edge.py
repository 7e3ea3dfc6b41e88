"""Production mode, Postfix side: a private Postfix made from `courriel edge postfix`
in front of `courriel serve` in edge mode. What a provider met with a hand-written
configuration (bounces after acceptance, backscatter, smuggling, 451 during a
restart) must not happen with the generated one."""

from __future__ import annotations

import pwd
import re
import smtplib
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.edge.conftest import Edge
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.slow


def listening_pids(port: int) -> set[str]:
    """The processes holding a listening socket on `port` (`ss`, as root: every user's)."""
    listing = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return set(re.findall(r"pid=(\d+)", listing))


def test_serve_in_edge_mode_leaves_the_public_ports_to_postfix_and_dovecot(edge: Edge) -> None:
    output = "".join(edge.served.output)
    assert "Edge mode:" in output
    for section in ("lmtp", "policy", "socketmap"):
        assert f"{section}:" in output
    pid = str(edge.served.proc.pid)
    children = subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout
    ours = {pid, *children.split()}  # `courriel serve` and its worker processes
    ports = edge.served.ports
    assert ours & listening_pids(ports["lmtp"])  # what it does listen on is seen as ours
    for section in ("smtp", "submission", "imap", "pop3"):
        assert f"{section}: " not in output.replace("smtp-workers", "")
        # Whose socket, not whether anything answers: a port left free may be taken by
        # another test's server meanwhile.
        assert not ours & listening_pids(ports[section]), section


def test_lmtp_is_shared_by_worker_processes_and_all_mail_arrives(edge: Edge) -> None:
    """In edge mode every message comes in over LMTP: like port 25 in embedded mode,
    the LMTP port is served by `[smtp] workers` processes (here 2), all running as
    the service user, and mail sent over many connections all reaches the mailbox."""
    assert "lmtp: 1 worker processes besides this one" in "".join(edge.served.output)
    holders = listening_pids(edge.served.ports["lmtp"])
    assert len(holders) == 2, holders
    for pid in holders:
        status = Path(f"/proc/{pid}/status").read_text()
        uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
        assert uid is not None and int(uid.group(1)) == pwd.getpwnam("courriel").pw_uid

    def send(number: int) -> None:
        with edge.smtp() as client:
            client.sendmail(
                "alice@example.org",
                ["info@monsite.be"],
                f"From: alice@example.org\r\nSubject: shared lmtp {number}\r\n\r\nx\r\n",
            )

    senders = [threading.Thread(target=send, args=(n,)) for n in range(20)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    for number in range(20):
        edge.wait_message("monsite0001", f"Subject: shared lmtp {number}\r\n".encode())
    assert "Mail queue is empty" in edge.postfix.queued()


def test_mail_through_the_edge_reaches_the_mailbox(edge: Edge) -> None:
    with edge.smtp() as client:
        client.sendmail(
            "alice@example.org",
            ["info@monsite.be"],
            b"From: alice@example.org\r\nSubject: through the edge\r\n\r\nhello\r\n",
        )
    delivered = edge.wait_message("monsite0001", b"Subject: through the edge")
    assert b"Delivered-To: info@monsite.be" in delivered
    assert b"with LMTP" in delivered and b"with ESMTP" in delivered  # ours, then Postfix's


def test_unknown_recipient_refused_by_postfix_at_rcpt(edge: Edge) -> None:
    with edge.smtp() as client:
        client.ehlo("sender.example.org")
        client.mail("forged@example.org")
        code, text = client.rcpt("nobody@monsite.be")
        assert code == 550 and text.startswith(b"5.1.1 <nobody@monsite.be>"), text
        assert text.endswith(b"No such user here")
        code, text = client.rcpt("gone@monsite.be")
        assert code == 550 and text.startswith(b"5.1.1") and text.endswith(b"Left us"), text
        assert client.rcpt("someone@elsewhere.example")[0] == 554  # not a relay
    edge.postfix.wait_for_log("NOQUEUE: reject: RCPT from")
    assert "Mail queue is empty" in edge.postfix.queued()  # nothing to bounce


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("8bit", "Subject: 8bit undeclared\r\n\r\ncafé crème\r\n".encode()),
        ("nul", b"Subject: nul byte\r\n\r\nbefore \x00 after\r\n"),
    ],
)
def test_mail_postfix_accepted_is_delivered_never_bounced(
    edge: Edge, name: str, body: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", edge.port), timeout=60) as sock:
        stream = sock.makefile("rb")
        replies = []
        for line in (
            b"",
            b"HELO sender.example.org\r\n",  # no 8BITMIME declared
            b"MAIL FROM:<alice@example.org>\r\n",
            b"RCPT TO:<info@monsite.be>\r\n",
            b"DATA\r\n",
            body + b".\r\n",
            b"QUIT\r\n",
        ):
            if line:
                sock.sendall(line)
            replies.append(stream.readline())
        assert replies[5].startswith(b"250"), replies
    edge.wait_message("monsite0001", body.split(b"\r\n", 1)[0])
    assert "status=bounced" not in edge.postfix.log_text()


@pytest.mark.parametrize(
    "sequence",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r"],
    ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CR"],
)
def test_smuggling_sequences_deliver_one_message_only(edge: Edge, sequence: bytes) -> None:
    tag = sequence.hex().encode()
    smuggled = (
        b"MAIL FROM:<ceo@monsite.be>\r\nRCPT TO:<info@monsite.be>\r\nDATA\r\n"
        b"Subject: smuggled " + tag + b"\r\n\r\nforged\r\n"
    )
    body = b"Subject: carrier " + tag + b"\r\n\r\nbefore" + sequence + smuggled
    with socket.create_connection(("127.0.0.1", edge.port), timeout=60) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        for command in (
            b"EHLO sender.example.org\r\n",
            b"MAIL FROM:<alice@example.org>\r\n",
            b"RCPT TO:<info@monsite.be>\r\n",
            b"DATA\r\n",
        ):
            sock.sendall(command)
            while stream.readline()[3:4] == b"-":
                pass
        sock.sendall(body + b"\r\n.\r\nQUIT\r\n")
        assert stream.readline().startswith(b"250")
    carrier = edge.wait_message("monsite0001", b"Subject: carrier " + tag)
    assert b"Subject: smuggled " + tag in carrier  # inside the one message
    assert not [m for m in edge.messages("monsite0001") if m.startswith(b"Subject: smuggled")]
    assert sum(b"smuggled " + tag in m for m in edge.messages("monsite0001")) == 1


def test_full_mailbox_waits_in_postfix_queue_until_the_quota_is_raised(edge: Edge) -> None:
    big = b"x" * 76 + b"\r\n"
    first = b"Subject: fills it\r\n\r\n" + big * 10_000  # ~780 KiB of a 1 MiB quota
    second = b"Subject: waits\r\n\r\n" + big * 5_000
    with edge.smtp() as client:
        client.sendmail("alice@example.org", ["small@monsite.be"], first)
    edge.wait_message("monsite0002", b"Subject: fills it")
    with edge.smtp() as client:
        client.sendmail("alice@example.org", ["small@monsite.be"], second)  # Postfix: 250
    edge.postfix.wait_for_log("4.2.2")
    assert "small@monsite.be" in edge.postfix.queued()
    edge.courriel("user", "modify", "monsite.be", "monsite0002", "--quota", "10M")
    edge.postfix.flush_queue()
    edge.wait_message("monsite0002", b"Subject: waits")
    assert "status=bounced" not in edge.postfix.log_text()


def xclient_rcpt(edge: Edge, address: str, recipient: str) -> tuple[int, bytes]:
    """RCPT as if the client were `address` (Postfix's XCLIENT, allowed to the test)."""
    with edge.smtp() as client:
        client.ehlo("test.example.org")
        code, text = client.docmd("XCLIENT", f"ADDR={address} NAME=mx.outside.example")
        assert code == 220, text
        client.ehlo("mx.outside.example")
        client.mail("newsletter@outside.example")
        return client.rcpt(recipient)


def test_greylisting_through_the_policy_service(edge: Edge) -> None:
    code, text = xclient_rcpt(edge, "198.51.100.7", "info@monsite.be")
    assert code == 450 and text.startswith(b"4.7.1"), (code, text)
    assert b"Greylisting in effect, please retry in 60 minutes" in text
    trusted = xclient_rcpt(edge, "127.0.0.9", "info@monsite.be")  # [smtp] trusted_networks
    assert trusted[0] == 250, trusted


def test_serve_restarted_while_mail_flows_loses_and_bounces_nothing(edge: Edge) -> None:
    sent: list[str] = []
    stop = threading.Event()

    def sender() -> None:
        number = 0
        while not stop.is_set():
            subject = f"flow {number}"
            try:
                with edge.smtp() as client:
                    client.sendmail(
                        "alice@example.org",
                        ["info@monsite.be"],
                        f"Subject: {subject}\r\n\r\nbody\r\n".encode(),
                    )
                sent.append(subject)
                number += 1
            except smtplib.SMTPResponseException as error:
                assert 400 <= error.smtp_code < 500, error  # a retry later, never a refusal
                time.sleep(0.2)
            except smtplib.SMTPRecipientsRefused as error:
                [(code, _)] = error.recipients.values()
                assert 400 <= code < 500, error
                time.sleep(0.2)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        wait_until(lambda: len(sent) >= 5, "mail flowing before the restart")
        edge.restart_serve(down_for=2)  # mail keeps coming while Courriel is down
        edge.postfix.flush_queue()
        count = len(sent)
        wait_until(lambda: len(sent) >= count + 5, "mail flowing after the restart")
    finally:
        stop.set()
        thread.join(60)
    edge.postfix.flush_queue()
    subjects = wait_until(
        lambda: (
            found
            if set(sent) <= (found := _flow_subjects(edge))
            else (edge.postfix.flush_queue() and None)
        ),
        "every accepted message in the mailbox",
    )
    assert sum(1 for s in subjects if s.startswith("flow")) == len(set(sent))
    assert "status=bounced" not in edge.postfix.log_text()


def _flow_subjects(edge: Edge) -> set[str]:
    found = set()
    for message in edge.messages("monsite0001"):
        for line in message.split(b"\r\n"):
            if line.startswith(b"Subject: flow "):
                found.add(line[len(b"Subject: ") :].decode())
    return found


def test_a_bounce_is_greylisted_at_data_and_other_mail_is_not_asked_again(edge: Edge) -> None:
    """The null sender passes RCPT (address-verification probes stop there) and is
    greylisted at DATA; the generated main.cf asks the policy service at DATA for the
    null sender only (one round trip less per message)."""
    with edge.smtp() as client:
        client.ehlo("test.example.org")
        assert client.docmd("XCLIENT", "ADDR=198.51.100.8 NAME=mx.bounces.example")[0] == 220
        client.ehlo("mx.bounces.example")
        client.mail("")
        assert client.rcpt("info@monsite.be")[0] == 250
        code, text = client.docmd("DATA")
        assert code == 450 and b"Greylisting in effect" in text, (code, text)
    main_cf = (edge.postfix.config / "main.cf").read_text()
    assert "check_sender_access inline:{ <>=courriel_null_sender }" in main_cf


def test_without_greylisting_postfix_does_not_ask_the_policy_service() -> None:
    from courriel.config import get_config
    from courriel.edge.postfix import Listen, PostfixOptions, main_cf

    config = get_config()
    options = PostfixOptions(
        config_dir=Path("/etc/postfix"),
        queue_dir=Path("/var/spool/postfix"),
        data_dir=Path("/var/lib/postfix"),
        smtp=Listen("0.0.0.0", 25),
        submission=None,
        dovecot_auth="inet:127.0.0.1:12345",
        relay=Listen("127.0.0.1", 10026),
    )
    assert "check_policy_service" in main_cf(config, options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(config.greylist, "enabled", False)
        text = main_cf(config, options)
    assert "check_policy_service" not in text
    assert "smtpd_data_restrictions = reject_unauth_pipelining" in text


def test_postfix_keeps_its_lmtp_connections_to_courriel_open(edge: Edge) -> None:
    """The generated configuration caches LMTP connections for every message, not only
    under a backlog: no new connection, LHLO and QUIT per message on either side."""
    for number in range(4):
        with edge.smtp() as client:
            client.sendmail(
                "alice@example.org",
                ["info@monsite.be"],
                f"From: alice@example.org\r\nSubject: reused {number}\r\n\r\nx\r\n",
            )
        edge.wait_message("monsite0001", f"Subject: reused {number}\r\n".encode())
    log = edge.postfix.wait_for_log("conn_use=")  # a delivery over a connection already open
    assert "table lookup problem" not in log
