"""Issue 16, statistics: a known sequence of deliveries and refusals sent over SMTP to
a real `courriel serve`, and the figures the API and the command line give for it.

Sent from 127.0.0.2 (a trusted network here: no greylisting, no incoming checks) and
from 127.0.1.1 (a stranger, greylisted); submitted by monsite0001 on port 587.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.nsd import PrivateNSD
from tests.fixtures.platform import STRONG, Platform, message, private_platform
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.slow

TRUSTED, STRANGER = "127.0.0.2", "127.0.1.1"
ENV = {
    "COURRIEL_SMTP_TRUSTED_NETWORKS": f"{TRUSTED}/32",
    "COURRIEL_GREYLIST_DELAY": "1h",
    "COURRIEL_GREYLIST_DEFAULT_WHITELIST": "false",
}
EXPECTED = {  # monsite.be, over the last 48 hours and the last 90 days alike
    "received": 5,
    "delivered": 4,
    "forwarded": 1,
    "refused": 4,
    "greylisted": 1,
    "sent": 2,
}


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("stats")
    dns = PrivateNSD(base / "nsd")
    dns.zone("sender.example", ['@ TXT "v=spf1 -all"'])
    dns.start()
    try:
        env = {**ENV, "COURRIEL_DNS_NAMESERVERS": dns.nameserver}
        with private_platform(base, env) as platform:
            platform.courriel(
                "alias", "create", "monsite.be", "frederic", "--to", "frederic@gmail.com"
            )
            play_the_sequence(platform)
            # Counted in memory and written every few seconds: every test here reads
            # what was written, whichever of them runs first.
            wait_until(lambda: written(platform) == EXPECTED, "the counts to be written")
            yield platform
    finally:
        dns.stop()


def smtp_from(platform: Platform, source: str) -> smtplib.SMTP:
    client = smtplib.SMTP(
        "127.0.0.1", platform.port("smtp"), timeout=30, source_address=(source, 0)
    )
    client.ehlo("mx.sender.example")
    return client


def play_the_sequence(platform: Platform) -> None:
    sender = "alice@sender.example"
    with smtp_from(platform, TRUSTED) as client:
        for _ in range(3):  # received 3, delivered 3
            client.sendmail(sender, ["info@monsite.be"], message(sender, ["info@monsite.be"]))
        # received 1, forwarded 1 (frederic@ forwards only)
        client.sendmail(sender, ["frederic@monsite.be"], message(sender, ["frederic@monsite.be"]))
        # received 1, delivered 1; refused 1 (unknown recipient) at RCPT
        refused = client.sendmail(
            sender,
            ["info@monsite.be", "nobody@monsite.be"],
            message(sender, ["info@monsite.be"]),
        )
        assert list(refused) == ["nobody@monsite.be"]
        for _ in range(2):  # refused 2 (unknown recipient)
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(sender, ["nobody2@monsite.be"], message(sender, ["x@y.z"]))
        # refused 1 (relaying: no hosted domain, counted for the provider only)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail(sender, ["someone@gmail.com"], message(sender, ["x@y.z"]))
        # refused 1 (a mail loop: too many Received headers) after DATA
        body = ("Received: from a by b\r\n" * 31).encode() + message(sender, ["info@monsite.be"])
        with pytest.raises(smtplib.SMTPDataError) as loop:
            client.sendmail(sender, ["info@monsite.be"], body)
        assert loop.value.smtp_code == 554
    with smtp_from(platform, STRANGER) as client:  # greylisted 1
        client.mail(sender)
        code, text = client.rcpt("info@monsite.be")
        assert code == 451 and b"Greylisting" in text
    with platform.submission("monsite0001") as client:  # sent 2
        for n in range(2):
            client.sendmail(
                "info@monsite.be",
                ["friend@gmail.com"],
                message("info@monsite.be", ["friend@gmail.com"], subject=f"sent {n}"),
            )
    platform.wait_messages("monsite0001", 4)


def token(platform: Platform, *args: str) -> str:
    out = platform.courriel("token", "create", *args, "--name", "stats").out
    return out.splitlines()[1].strip()


def api(platform: Platform, secret: str, query: str = "") -> Any:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(
        f"https://127.0.0.1:{platform.port('web')}/api/v1/statistics{query}",
        headers={"Authorization": f"Bearer {secret}"},
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return json.loads(response.read())


def written(platform: Platform) -> dict[str, int]:
    shown = platform.courriel("stats", "show", "--domain", "monsite.be", "--json").json
    return totals(shown, "days")


def totals(answer: Any, per: str) -> dict[str, int]:
    return {metric: sum(row[metric] for row in answer[per]) for metric in EXPECTED}


def test_the_owner_sees_exactly_what_was_sent(counted: Platform) -> None:
    secret = token(counted, "--login", "monsite")
    # Counted in memory and written every few seconds: wait until all of it is in.
    answer = wait_until(
        lambda: (found := api(counted, secret)) and totals(found, "hours") == EXPECTED and found,
        "the statistics to show the sequence",
    )
    assert totals(answer, "days") == EXPECTED
    assert answer["refused_by_reason_48h"] == {"unknown_recipient": 3, "loop": 1}
    assert answer["refused_by_reason_90d"] == {"unknown_recipient": 3, "loop": 1}
    assert answer["domains"] == ["monsite.be"] and answer["queue_now"] is None
    # Hour by hour: everything in the last hour of the 48 (or the last two, when the
    # clock struck the hour while the mail was being sent).
    assert len(answer["hours"]) == 48
    assert sum(hour["received"] for hour in answer["hours"][-2:]) == 5


def test_the_provider_also_sees_mail_for_no_hosted_domain(counted: Platform) -> None:
    counted.courriel("admin", "create", "stats-admin", "--password", STRONG + "adm")
    secret = token(counted, "--admin", "stats-admin")
    answer = wait_until(
        lambda: (
            (found := api(counted, secret)) and totals(found, "hours")["refused"] == 5 and found
        ),
        "the provider's statistics",
    )
    assert answer["refused_by_reason_90d"]["relay_denied"] == 1
    assert answer["domains"] is None and isinstance(answer["queue_now"], int)
    one = api(counted, secret, "?domain=monsite.be")
    assert totals(one, "hours") == EXPECTED


def test_disk_use_per_mailbox_and_the_command_line(counted: Platform, tmp_path: Path) -> None:
    counted.courriel("stats", "sample")
    shown = counted.courriel("stats", "show", "--domain", "monsite.be", "--json").json
    assert shown["disk"]["by"] == "mailbox"
    assert shown["disk"]["bytes"]["monsite0001"][-1] > 0
    assert {m: sum(r[m] for r in shown["days"]) for m in EXPECTED} == EXPECTED
    text = counted.courriel("stats", "show").out
    assert "received" in text and "Waiting in the outbound queue now" in text


def test_nobody_else_sees_them(counted: Platform) -> None:
    counted.courriel("domain", "create", "autre.be", "--plan", "simple")
    secret = token(counted, "--login", "autre")
    answer = api(counted, secret)
    assert totals(answer, "hours") == dict.fromkeys(EXPECTED, 0)
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(counted, secret, "?domain=monsite.be")
    assert refused.value.code == 404
    user = token(counted, "--login", "monsite0001")
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        api(counted, user)
    assert forbidden.value.code == 403
