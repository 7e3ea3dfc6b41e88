"""The policy service inside a real `courriel serve`, with a delay of two seconds:
deferred, accepted after the delay, remembered across a restart, and rules changed
by the CLI in another process applied while it runs."""

from __future__ import annotations

import re
import time

import pytest

from tests.fixtures.processes import Courriel, start_serve
from tests.greylist.test_policy import Client, deferred

pytestmark = pytest.mark.slow

ENV = {
    "COURRIEL_GREYLIST_DELAY": "2s",
    "COURRIEL_GREYLIST_RELOAD_INTERVAL": "1s",
    "COURRIEL_WEB_ENABLED": "false",
}


def test_policy_service_in_courriel_serve(courriel: Courriel) -> None:
    served = start_serve(courriel, ENV)
    try:
        assert any("policy: Postfix policy service" in line for line in served.output)
        client = Client(served.ports["policy"])
        assert deferred(client.ask())
        time.sleep(2.2)
        reply = client.ask()
        # The seconds since the first attempt: 2, or more on a machine that is slow.
        delayed = re.match(r"PREPEND X-Greylist: delayed (\d+) seconds by Courriel-", reply)
        assert delayed is not None and int(delayed[1]) >= 2, reply
        client.close()
    finally:
        assert served.stop() == 0
    found = courriel("greylist", "lookup", "--sender", "alice@example.org", "--json").json
    assert found["triplets"][0]["state"] == "trusted"
    assert courriel("greylist", "status", "--json").json["total"]["passed_retry"] == 1

    again = start_serve(courriel, ENV)
    try:
        client = Client(again.ports["policy"])
        assert client.ask(instance="second.message") == "DUNNO"  # survived the restart
        assert deferred(client.ask(client_address="198.51.100.9"))
        courriel("greylist", "whitelist", "add", "client", "198.51.100.0/24")
        deadline = time.monotonic() + 15
        while deferred(client.ask(client_address="198.51.100.9")):
            assert time.monotonic() < deadline, "the running service never saw the change"
            time.sleep(0.3)
        courriel("greylist", "domain", "monsite.be", "--off", ok=False)  # no such domain yet
        client.close()
    finally:
        assert again.stop() == 0
