"""Issue 16, item 6: the reader's language everywhere a customer reads. Plan names
are translated (a provider's own label is shown as written); the audit log reads as
sentences, a password change being its own entry, while the API and `--json` keep the
stable codes; dates are written one way per language on every page."""

from __future__ import annotations

import ast
import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

import courriel
from courriel.accounts.models import Mailbox
from courriel.accounts.services.plans import create_plan
from courriel.audit.models import AuditEntry
from courriel.audit.sentences import SENTENCES
from tests.fixtures.accounts import Customer
from tests.fixtures.api import Api
from tests.fixtures.panel import Browser
from tests.fixtures.processes import InProcess

TEMPLATES = Path(courriel.__file__).parent / "panel" / "templates"

PLAN = {"en": "Recommended", "fr": "Recommandé", "nl": "Aanbevolen"}
PASSWORD = {
    "en": "monsite changed the password of monsite0001",
    "fr": "monsite a changé le mot de passe de monsite0001",
    "nl": "monsite heeft het wachtwoord van monsite0001 gewijzigd",
}
FORWARDING = {
    "en": "monsite changed the mailbox monsite0001: forwarding",
    "fr": "monsite a modifié la boîte mail monsite0001 : redirection",
    "nl": "monsite heeft mailbox monsite0001 gewijzigd: doorsturen",
}
CREATED = {
    "en": "test-provider created the virtual server monsite.be on plan recommended",
    "fr": "test-provider a créé le serveur virtuel monsite.be avec la formule recommended",
    "nl": "test-provider heeft virtuele server monsite.be aangemaakt met pakket recommended",
}
DAY = {"en": "Jan. 21, 2009", "fr": "21 janvier 2009", "nl": "21 januari 2009"}
SHORT_DATE = re.compile(r"\b\d{1,2}[/-]\d{1,2}[/-]\d{2,4}\b")


def page(browser: Browser, url: str, language: str) -> str:
    response = browser.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, url
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_plan_names_in_the_reader_s_language(
    owner_browser: Browser, provider_browser: Browser, monsite: Customer, language: str
) -> None:
    assert PLAN[language] in page(owner_browser, "/d/monsite.be/", language)
    assert PLAN[language] in page(owner_browser, "/d/monsite.be/details/", language)
    create_plan(monsite.actor.__class__.system(), "pro", label="Pro Max", max_mailboxes=3)
    plans = page(provider_browser, "/provider/plans/", language)
    assert PLAN[language] in plans and "Pro Max" in plans


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_the_audit_log_reads_as_sentences(
    owner_browser: Browser, monsite: Customer, info: Mailbox, language: str
) -> None:
    owner_browser.post(
        "/d/monsite.be/password/monsite0001/",
        {"password": "N3w-Pass-phrase!", "password_again": "N3w-Pass-phrase!"},
    )
    owner_browser.post(
        "/d/monsite.be/user/monsite0001/",
        {
            **_edit(info),
            "forward": "on",
            "forward_to": "monsite@gmail.com",
        },
    )
    log = page(owner_browser, "/d/monsite.be/audit/", language)
    assert PASSWORD[language] in log and FORWARDING[language] in log
    assert CREATED[language] in log
    words = re.sub(r"<[^>]+>", " ", log)  # what a person reads
    for code in ("mailbox.modify", "mailbox.password", "domain.create"):
        assert code not in words, code
    # The filter offers the actions by name, and finds the password changes.
    only = page(owner_browser, "/d/monsite.be/audit/?action=mailbox.password", language)
    assert PASSWORD[language] in only and FORWARDING[language] not in only


def test_a_password_change_is_its_own_entry_everywhere(
    owner_api: Api, monsite: Customer, info: Mailbox, cli: InProcess
) -> None:
    status, _ = owner_api.post(
        "/domains/monsite.be/mailboxes/monsite0001/password", {"password": "N3w-Pass-phrase!"}
    )
    assert status == 200
    status, _ = owner_api.patch(
        "/domains/monsite.be/mailboxes/monsite0001",
        {"password": "An0ther-Pass-phrase", "real_name": "Info desk"},
    )
    assert status == 200
    actions = list(AuditEntry.objects.filter(target="monsite0001").values_list("action", flat=True))
    assert actions.count("mailbox.password") == 2
    assert "mailbox.modify" in actions
    modify = AuditEntry.objects.filter(action="mailbox.modify", target="monsite0001").first()
    assert modify is not None and "password" not in str(modify.details)
    response = owner_api.client.get(
        "/api/v1/audit", secure=True, HTTP_ACCEPT_LANGUAGE="fr", **owner_api.headers
    )
    items = response.json()["items"]
    assert items[0]["action"] in {"mailbox.password", "mailbox.modify"}
    summaries = {item["action"]: item["summary"] for item in items}
    assert summaries["mailbox.password"] == "api:" + PASSWORD["fr"]
    rows = cli("audit", "--domain", "monsite.be", "--json").json
    assert {"mailbox.password", "mailbox.modify", "domain.create"} <= {r["action"] for r in rows}
    text = cli("audit", "--domain", "monsite.be").out
    assert PASSWORD["en"] in text


def test_an_action_without_a_sentence_still_reads(
    owner_browser: Browser, monsite: Customer
) -> None:
    AuditEntry.objects.create(
        actor="monsite", role="owner", action="totp.enable", target="monsite", domain="monsite.be"
    )
    assert "monsite: totp.enable monsite" in page(owner_browser, "/d/monsite.be/audit/", "en")


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_dates_are_written_one_way(
    owner_browser: Browser,
    provider_browser: Browser,
    info: Mailbox,
    language: str,
) -> None:
    when = datetime(2009, 1, 21, 12, tzinfo=UTC)
    Mailbox.objects.filter(pk=info.pk).update(password_changed_at=when, last_mail_at=when)
    AuditEntry.objects.update(at=when)
    for browser, url in (
        (owner_browser, "/d/monsite.be/user/monsite0001/"),
        (owner_browser, "/d/monsite.be/details/"),
        (owner_browser, "/d/monsite.be/audit/"),
        (provider_browser, "/"),
        (provider_browser, "/provider/audit/"),
        (provider_browser, "/provider/domains/"),
    ):
        shown = page(browser, url, language)
        body = shown.split("<body", 1)[1].split(">", 1)[1]
        assert not SHORT_DATE.search(body), (url, SHORT_DATE.search(body))
        if "audit" in url or url == "/" or "user" in url:
            assert DAY[language] in body, url


def test_templates_write_dates_through_the_two_filters() -> None:
    """`day` and `moment` are the only ways a template writes a date for people."""
    for template in TEMPLATES.rglob("*.html"):
        for found in re.findall(r"\|date:(\S+?)[ }]", template.read_text()):
            assert found.strip("\"'") == "c", (template.name, found)


def _edit(mailbox: Mailbox) -> dict[str, str]:
    from tests.panel.test_mailbox_pages import edit_form

    return {
        k: str(v)
        for k, v in edit_form(
            mailbox, autoreply_interval_0="value", autoreply_interval_1="1440"
        ).items()
    }


def _recorded_codes() -> set[str]:
    """Every action code the platform passes to the audit log's `record`."""
    codes: set[str] = set()
    for source in Path(courriel.__file__).parent.rglob("*.py"):
        tree = ast.parse(source.read_text())
        for call in ast.walk(tree):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "record"
                and len(call.args) >= 2
            ):
                code = call.args[1]
                if isinstance(code, ast.Name):  # `action = "a.b" if ... else "a.c"`
                    code = ast.Tuple(
                        elts=[
                            assign.value
                            for assign in ast.walk(tree)
                            if isinstance(assign, ast.Assign)
                            and any(
                                isinstance(t, ast.Name) and t.id == code.id for t in assign.targets
                            )
                        ]
                    )
                for node in ast.walk(code):
                    if isinstance(node, ast.Constant) and isinstance(node.value, str):
                        codes.add(node.value)
    return codes


def test_every_recorded_action_reads_as_a_sentence() -> None:
    """A new action (two-step sign-in, app passwords, domain verification...) gets its
    sentence with it, instead of the fallback's raw code."""
    codes = _recorded_codes()
    assert {"mailbox.password", "two_factor.on", "domain.verify"} <= codes
    assert codes <= set(SENTENCES), sorted(codes - set(SENTENCES))
