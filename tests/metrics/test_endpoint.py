"""`/metrics` in the Prometheus text format, read back with Prometheus' own Python
parser: the greylisting figures, who may read them (a provider token or session),
and a capability whose figures fail does not cost the others theirs."""

from __future__ import annotations

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor
from courriel.api.tokens import create_token
from courriel.greylist.engine import Engine
from courriel.metrics.figures import Metric, collect
from courriel.metrics.text import render
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Admin, Browser

URL = "/metrics"


def scrape(token: str) -> tuple[int, str, str]:
    response = Client().get(URL, secure=True, HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code, response["Content-Type"], response.content.decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_greylisting_figures_for_a_provider_token(admin: Admin, greylist_traffic: Engine) -> None:
    status, kind, text = scrape(create_token(admin.actor, "prometheus").secret)
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    found = samples(text)
    host = (("host", "maximusconfessor.all2all.org"),)
    assert found[("courriel_greylist_decisions_total", (*host, ("result", "deferred")))] == 3
    assert found[("courriel_greylist_decisions_total", (*host, ("result", "passed_retry")))] == 1
    assert found[("courriel_greylist_triplets", (("state", "pending"),))] == 2
    assert found[("courriel_greylist_triplets", (("state", "trusted"),))] == 1
    assert found[("courriel_metrics_collector_up", (("collector", "greylist"),))] == 1
    assert "# TYPE courriel_greylist_decisions_total counter" in text


def test_a_provider_session_may_read_them(provider_browser: Browser) -> None:
    response = provider_browser.get(URL)
    assert response.status_code == 200
    assert "courriel_greylist_whitelist_entries 0" in response.content.decode()


def test_nobody_else_may(monsite: Customer, info: Mailbox, owner_browser: Browser) -> None:
    assert Client().get(URL, secure=True).status_code == 401
    status, _kind, text = scrape("crl_not-a-token")
    assert status == 401 and "provider API token" in text
    for actor in (monsite.actor, Actor.for_mailbox(info)):
        status, _kind, text = scrape(create_token(actor, "t").secret)
        assert status == 403 and "courriel_" not in text
    assert owner_browser.get(URL).status_code == 403
    assert Client().post(URL, secure=True).status_code == 405


def test_a_failing_collector_is_reported_down(db: None) -> None:
    found = samples(
        render(collect(("courriel.nothing_here:metrics", "courriel.greylist.services:metrics")))
    )
    assert found[("courriel_metrics_collector_up", (("collector", "nothing_here"),))] == 0
    assert found[("courriel_metrics_collector_up", (("collector", "greylist"),))] == 1


def test_the_text_format_escapes_labels_and_groups_samples() -> None:
    text = render(
        [
            Metric(
                name="x_total", help='a "b"\\c\nd', kind="counter", value=1, labels={"l": 'q"\\\n'}
            ),
            Metric(name="y", help="y", kind="gauge", value=0.5),
            Metric(name="x_total", help="", kind="counter", value=2, labels={"l": "two"}),
        ]
    )
    assert text.count("# TYPE x_total counter") == 1
    assert 'x_total{l="q\\"\\\\\\n"} 1' in text and "y 0.5" in text
    found = samples(text)
    assert found[("x_total", (("l", 'q"\\\n'),))] == 1 and found[("x_total", (("l", "two"),))] == 2
