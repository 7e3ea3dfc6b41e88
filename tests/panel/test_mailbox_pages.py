"""Chapters 6 to 9 in the panel: "Mail and FTP Users", "Add a user to this server",
"Batch create users", the Edit Mailbox page, "Delete Selected Users"."""

from __future__ import annotations

from datetime import date

from courriel.accounts.models import Address, Mailbox
from courriel.accounts.services.mailboxes import authenticate, create_mailbox
from courriel.audit.models import AuditEntry
from tests.fixtures.accounts import STRONG, Customer, make_customer
from tests.fixtures.panel import Browser, signed_in

USERS = "/d/monsite.be/users/"
INFO = "/d/monsite.be/user/monsite0001/"


def edit_form(mailbox: Mailbox, **changes: object) -> dict[str, object]:
    """What the browser sends back from the Edit Mailbox page, with some changes."""
    data: dict[str, object] = {
        "primary_local_part": mailbox.login,
        "login": mailbox.login,
        "real_name": mailbox.real_name,
        "password_0": "none",
        "password_1": "",
        "quota_0": "value" if mailbox.quota else "none",
        "quota_1": f"{mailbox.quota}" if mailbox.quota else "",
        "primary_enabled": "True",
        "addresses": "\n".join(
            f"{a.local_part}@{a.domain.name}" for a in mailbox.addresses.filter(kind="additional")
        ),
        "deliver_normally": "on",
        "greylisting": "on",
        "autoreply_message": "",
        "autoreply_interval_0": "none",
        "autoreply_start_0": "none",
        "autoreply_end_0": "none",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_list_says_how_many_more_mailboxes_the_plan_allows(
    owner_browser: Browser, info: Mailbox
) -> None:
    page = owner_browser.text(USERS)
    assert "Based on your limits, 9 additional mailboxes can be added." in page
    assert "In domain monsite.be" in page
    for heading in ("Name", "IMAP/POP3 login", "Real name", "Disk quota", "Quota used"):
        assert heading in page
    assert "monsite0001" in page and "Info" in page
    assert "30\u00a0GB" in page  # the owner's mailbox shows the plan's total
    assert "3\u00a0GB" in page  # monsite0001 has the plan's default quota
    assert "Email only" in page
    assert 'name="selected" value="monsite0001"' in page
    assert "Delete Selected Users" in page


def test_long_lists_are_paged_and_searchable(provider, servers) -> None:  # type: ignore[no-untyped-def]
    big = make_customer(provider, "grand.be", plan="large")
    for n in range(60):
        create_mailbox(big.actor, big.domain, real_name=f"Person {n}", password=STRONG)
    browser = signed_in(big.owner)
    first = browser.text("/d/grand.be/users/")
    assert "Page 1 of 2" in first and "grand0050" not in first
    second = browser.text("/d/grand.be/users/", page=2)
    assert "grand0060" in second and "grand0001" not in second
    found = browser.text("/d/grand.be/users/", q="Person 42")
    assert "grand0043" in found and "grand0042" not in found
    assert browser.get("/d/grand.be/users/", {"page": "999"}).status_code == 200


def test_add_user_suggests_the_naming_convention(owner_browser: Browser, monsite: Customer) -> None:
    page = owner_browser.text("/d/monsite.be/users/new/")
    assert 'value="monsite0001"' in page
    assert "Based on your limits, 10 additional mailboxes can be added." in page
    response = owner_browser.post(
        "/d/monsite.be/users/new/",
        {
            "primary_local_part": "monsite0001",
            "login": "monsite0001",
            "real_name": "Info",
            "password_0": "value",
            "password_1": STRONG,
            "quota_0": "value",
            "quota_1": "1024M",
            "primary_enabled": "True",
            "addresses": "info@monsite.be",
            "deliver_normally": "on",
        },
    )
    assert response.status_code == 302 and response["Location"] == USERS
    mailbox = Mailbox.objects.get(login="monsite0001")
    assert mailbox.real_name == "Info" and mailbox.quota == 1024**3
    assert authenticate("monsite0001", STRONG).ok
    assert Address.objects.filter(mailbox=mailbox, local_part="info").exists()
    assert 'value="monsite0002"' in owner_browser.text("/d/monsite.be/users/new/")


def test_add_user_with_a_generated_password_shows_it_once(
    owner_browser: Browser, monsite: Customer
) -> None:
    response = owner_browser.post(
        "/d/monsite.be/users/new/",
        {
            "primary_local_part": "monsite0001",
            "login": "monsite0001",
            "password_0": "none",
            "quota_0": "none",
            "primary_enabled": "True",
            "deliver_normally": "on",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "shown only this once" in page
    shown = page.split('<p class="secret-value"><code>')[1].split("</code>")[0]
    assert authenticate("monsite0001", shown).ok
    assert Mailbox.objects.get(login="monsite0001").quota is None  # "Unlimited" chosen


def test_add_user_errors_are_shown_on_their_fields_and_nothing_is_created(
    owner_browser: Browser, info: Mailbox
) -> None:
    base = {
        "primary_local_part": "monsite0002",
        "login": "monsite0002",
        "password_0": "value",
        "password_1": STRONG,
        "quota_0": "none",
        "primary_enabled": "True",
        "deliver_normally": "on",
    }
    cases = [
        ({"password_1": "short"}, "too short"),
        ({"addresses": "info"}, "already used by monsite0001"),
        ({"quota_0": "value", "quota_1": "lots"}, "Invalid size"),
        ({"quota_0": "value", "quota_1": "31G"}, "more than the 30 GB"),
        ({"quota_0": "value", "quota_1": ""}, "Enter a value"),
        ({"login": "Bad Login!"}, "is not a valid login"),
        ({"forward": "on", "forward_to": "nobody"}, "is not an e-mail address"),
        ({"deliver_normally": None}, "Mail would be thrown away"),
    ]
    for changes, message in cases:
        data = {k: v for k, v in {**base, **changes}.items() if v is not None}
        response = owner_browser.post("/d/monsite.be/users/new/", data)
        assert response.status_code == 200, changes
        page = response.content.decode()
        assert message in page, (changes, message)
        assert 'aria-invalid="true"' in page or 'class="alert error"' in page
        assert STRONG not in page  # a typed password is never sent back
    assert not Mailbox.objects.filter(login="monsite0002").exists()


def test_plan_limit_is_a_clear_error(provider, servers) -> None:  # type: ignore[no-untyped-def]
    small = make_customer(provider, "petit.be", plan="simple")
    create_mailbox(small.actor, small.domain, password=STRONG)
    browser = signed_in(small.owner)
    assert "Based on your limits, 0 additional mailboxes can be added." in browser.text(
        "/d/petit.be/users/"
    )
    response = browser.post(
        "/d/petit.be/users/new/",
        {
            "primary_local_part": "petit0002",
            "login": "petit0002",
            "password_0": "value",
            "password_1": STRONG,
            "quota_0": "none",
            "primary_enabled": "True",
            "deliver_normally": "on",
        },
    )
    assert "allows 1 mailboxes and all of them are used" in response.content.decode()
    assert not Mailbox.objects.filter(login="petit0002").exists()


def test_edit_page_has_the_manual_sections_and_never_shows_a_password(
    owner_browser: Browser, info: Mailbox
) -> None:
    page = owner_browser.text(INFO)
    for section in (
        "Virtual domain user mailbox details",
        "Quota and home directory settings",
        "Email settings",
        "Mail forwarding settings",
        "Automatic reply",
    ):
        assert section in page
    for label in (
        "Email address",
        "Real name",
        "Leave unchanged",
        "Set to",
        "Last changed on",
        "Login temporarily disabled",
        "Home directory quota",
        "Primary email address enabled?",
        "Inbox mail file",
        "Additional email addresses",
        "Deliver to this user normally",
        "Forward to other addresses",
        "Send automatic reply",
        "Minimum time between autoreplies",
        "Automatic reply start date",
        "Automatic reply end date",
        "Generate and show once",
    ):
        assert label in page, label
    assert "monsite.be/homes/monsite0001/Maildir" in page
    assert "info@monsite.be" in page
    assert 'type="date"' in page
    assert info.password_hash.split("$")[-1] not in page and "ARGON2" not in page
    assert "Show.." not in page


def test_chapter_7_additional_addresses(owner_browser: Browser, info: Mailbox) -> None:
    data = edit_form(info, addresses="info@monsite.be\ncontact@monsite.be\ninformation@monsite.be")
    response = owner_browser.post(INFO, data)
    assert response.status_code == 302
    emails = sorted(a.local_part for a in info.addresses.filter(kind="additional"))
    assert emails == ["contact", "info", "information"]
    assert "Mailbox monsite0001 saved." in owner_browser.text(INFO)


def test_chapter_8_forwarding_and_chapter_9_automatic_reply(
    owner_browser: Browser, info: Mailbox
) -> None:
    data = edit_form(
        info,
        forward="on",
        forward_to="monsite@gmail.com\njohn@example.org",
        autoreply_enabled="on",
        autoreply_message="I'm currently not available",
        autoreply_interval_0="value",
        autoreply_interval_1="10",
        autoreply_start_0="value",
        autoreply_start_1="2010-09-09",
        autoreply_end_0="value",
        autoreply_end_1="2010-09-19",
    )
    assert owner_browser.post(INFO, data).status_code == 302
    info.refresh_from_db()
    assert info.forward_to == ["monsite@gmail.com", "john@example.org"]
    assert info.deliver_normally
    assert info.autoreply_enabled and info.autoreply_message == "I'm currently not available"
    assert info.autoreply_interval == 600
    assert (info.autoreply_start, info.autoreply_end) == (date(2010, 9, 9), date(2010, 9, 19))
    page = owner_browser.text(INFO)
    assert 'value="2010-09-09"' in page and "monsite@gmail.com" in page
    # The audit log says what changed, and only that.
    entry = AuditEntry.objects.filter(action="mailbox.modify").first()
    assert entry is not None and "real_name" not in entry.details
    assert entry.details["autoreply_interval"] == 600


def test_edit_errors_change_nothing(owner_browser: Browser, info: Mailbox) -> None:
    cases = [
        (edit_form(info, deliver_normally=None), "Mail would be thrown away"),
        (
            edit_form(
                info,
                autoreply_start_0="value",
                autoreply_start_1="2010-09-19",
                autoreply_end_0="value",
                autoreply_end_1="2010-09-09",
            ),
            "end date is before its start date",
        ),
        (edit_form(info, autoreply_enabled="on"), "Write the automatic reply message"),
        (edit_form(info, quota_0="value", quota_1="100G"), "more than the 30 GB"),
        (edit_form(info, autoreply_start_0="value", autoreply_start_1="soon"), "Invalid date"),
        (edit_form(info, forward="on", forward_to="nobody@monsite.be"), "does not exist here"),
        (edit_form(info, password_0="value", password_1="monsite0001abc"), "not be built from"),
    ]
    before = (info.quota, info.autoreply_start, info.forward_to, info.password_hash)
    for data, message in cases:
        response = owner_browser.post(INFO, data)
        assert response.status_code == 200 and message in response.content.decode(), message
    info.refresh_from_db()
    assert (info.quota, info.autoreply_start, info.forward_to, info.password_hash) == before


def test_chapter_11_set_to(owner_browser: Browser, info: Mailbox) -> None:
    new = "N3w-Pass-phrase!"
    assert (
        owner_browser.post(INFO, edit_form(info, password_0="value", password_1=new)).status_code
        == 302
    )
    assert authenticate("monsite0001", new).ok and not authenticate("monsite0001", STRONG).ok


def test_generate_and_show_once_replaces_the_old_show_button(
    owner_browser: Browser, info: Mailbox
) -> None:
    url = INFO + "generate-password/"
    assert owner_browser.get(url).status_code == 405
    ask = owner_browser.post(url)
    assert "stops working at once" in ask.content.decode()
    assert authenticate("monsite0001", STRONG).ok  # not changed before confirming
    shown = owner_browser.post(url, {"confirm": "yes"})
    assert "no-store" in shown["Cache-Control"]
    password = shown.content.decode().split('<p class="secret-value"><code>')[1].split("<")[0]
    assert authenticate("monsite0001", password).ok and not authenticate("monsite0001", STRONG).ok
    # Shown once: the mailbox page does not show it again.
    assert password not in owner_browser.text(INFO)


def test_the_owner_changing_their_own_password_stays_signed_in(
    owner_browser: Browser, monsite: Customer
) -> None:
    url = "/d/monsite.be/user/monsite/"
    owner = monsite.owner
    data = edit_form(owner, password_0="value", password_1="N3w-Pass-phrase!", quota_0="none")
    refused = owner_browser.post(url, data)
    assert "Type your current password" in refused.content.decode()
    data["current_password"] = monsite.password
    assert owner_browser.post(url, data).status_code == 302
    assert owner_browser.get(url).status_code == 200
    other = signed_in(Mailbox.objects.get(pk=owner.pk))
    assert other.get(url).status_code == 200


def test_delete_selected_users_asks_first(
    owner_browser: Browser, monsite: Customer, info: Mailbox
) -> None:
    create_mailbox(monsite.actor, monsite.domain, password=STRONG)
    url = "/d/monsite.be/users/delete/"
    ask = owner_browser.post(url, {"selected": ["monsite0001", "monsite0002"]})
    page = ask.content.decode()
    assert "Delete 2 users" in page and "monsite0001 (Info)" in page
    assert Mailbox.objects.filter(login="monsite0001").exists()
    done = owner_browser.post(
        url, {"selected": ["monsite0001", "monsite0002"], "confirm": "yes"}, follow=True
    )
    assert "Deleted: monsite0001, monsite0002." in done.content.decode()
    assert not Mailbox.objects.filter(login__in=["monsite0001", "monsite0002"]).exists()
    nothing = owner_browser.post(url, {}, follow=True)
    assert "Select the users to delete first." in nothing.content.decode()


def test_the_owners_mailbox_cannot_be_deleted(owner_browser: Browser, monsite: Customer) -> None:
    done = owner_browser.post(
        "/d/monsite.be/users/delete/", {"selected": "monsite", "confirm": "yes"}, follow=True
    )
    assert "it goes only with the virtual server itself" in done.content.decode()
    assert Mailbox.objects.filter(login="monsite").exists()


def test_batch_create_from_pasted_csv_reports_each_line(
    owner_browser: Browser, info: Mailbox
) -> None:
    text = (
        "login,real_name,password,quota,addresses\n"
        f"monsite0002,Sales,{STRONG},1G,sales\n"
        "monsite0003,Support,,,support\n"
        f"monsite0004,Dup,{STRONG},,info\n"
    )
    response = owner_browser.post("/d/monsite.be/users/batch/", {"text": text})
    page = response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert "2 mailboxes created" in page
    assert "refused: info@monsite.be is already used by monsite0001" in page
    assert page.count("<code>") >= 1  # the generated password of line 3
    assert Mailbox.objects.filter(login__in=["monsite0002", "monsite0003"]).count() == 2


def test_batch_create_from_an_uploaded_file(owner_browser: Browser, monsite: Customer) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(
        "users.txt", f"monsite0001:Info:{STRONG}:0:1:1048576:info:\n".encode()
    )
    page = owner_browser.post("/d/monsite.be/users/batch/", {"upload": upload}).content.decode()
    assert "1 mailbox created" in page
    assert Mailbox.objects.get(login="monsite0001").quota == 1024**3
    binary = SimpleUploadedFile("users.csv", b"\xff\xfe\x00bad")
    page = owner_browser.post("/d/monsite.be/users/batch/", {"upload": binary}).content.decode()
    assert "not UTF-8 text" in page
    page = owner_browser.post("/d/monsite.be/users/batch/", {"text": "  "}).content.decode()
    assert "Paste the mailboxes or choose a file." in page


def test_unknown_mailbox_is_not_found(owner_browser: Browser, monsite: Customer) -> None:
    assert owner_browser.get("/d/monsite.be/user/nobody/").status_code == 404
    assert owner_browser.get("/d/monsite.be/password/nobody/").status_code == 404
