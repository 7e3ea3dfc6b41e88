"""API tokens: made in the panel for oneself (shown once, stored as a hash), listed,
revoked; and by `courriel token`."""

from __future__ import annotations

from courriel.api.models import ApiToken
from courriel.api.tokens import digest
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Browser


def secret_of(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode().split('<p class="secret-value"><code>')[1].split("<")[0]


def test_a_token_is_shown_once_and_only_its_hash_is_kept(
    owner_browser: Browser, monsite: Customer
) -> None:
    response = owner_browser.post(
        "/tokens/", {"name": "billing script", "current_password": monsite.password}
    )
    assert "no-store" in response["Cache-Control"]
    secret = secret_of(response)
    assert secret.startswith("crl_") and len(secret) > 40
    token = ApiToken.objects.get()
    assert token.mailbox_id == monsite.owner.pk and token.key_hash == digest(secret)
    assert secret not in str(ApiToken.objects.values())
    page = owner_browser.text("/tokens/")
    assert "billing script" in page and secret not in page and token.prefix in page
    api = owner_browser.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.json()["name"] == "api:monsite"


def test_revoking_asks_first_and_is_limited_to_ones_own(
    owner_browser: Browser, provider_browser: Browser, monsite: Customer, autre: Customer
) -> None:
    from tests.fixtures.panel import signed_in

    secret = secret_of(
        owner_browser.post("/tokens/", {"name": "mine", "current_password": monsite.password})
    )
    token = ApiToken.objects.get()
    other = signed_in(autre.owner)
    assert other.post(f"/tokens/{token.pk}/revoke/", {"confirm": "yes"}).status_code == 404
    assert "mine" not in other.text("/tokens/")
    ask = owner_browser.post(f"/tokens/{token.pk}/revoke/")
    assert "lose access at once" in ask.content.decode() and ApiToken.objects.exists()
    owner_browser.post(f"/tokens/{token.pk}/revoke/", {"confirm": "yes"})
    assert not ApiToken.objects.exists()
    refused = owner_browser.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 401
    # The provider sees (and may revoke) everyone's tokens.
    owner_browser.post("/tokens/", {"name": "again", "current_password": monsite.password})
    assert "again" in provider_browser.text("/tokens/")


def test_cli_token_create_list_revoke(cli, monsite: Customer) -> None:  # type: ignore[no-untyped-def]
    made = cli("token", "create", "--login", "monsite", "--name", "script", "--json").json
    assert made["holder"] == "monsite" and made["token"].startswith("crl_")
    listed = cli("token", "list", "--json").json
    assert listed[0]["prefix"] == made["token"][:10] and "token" not in listed[0]
    assert "Give exactly one" in cli("token", "create", "--name", "x", ok=False).err
    assert "No mailbox" in cli("token", "create", "--login", "ghost", "--name", "x", ok=False).err
    cli("token", "revoke", str(made["id"]), "--yes")
    assert cli("token", "list", "--json").json == []
    assert cli("token", "revoke", "999", "--yes", ok=False).code == 66
