"""Panel sign-in for mailboxes: domain owners and self-service mailbox users log in
with their mailbox login (or primary address) and password, like on IMAP."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from courriel.accounts.models import Mailbox
from courriel.accounts.services.mailboxes import authenticate


class MailboxBackend:
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Mailbox | None:
        if not username or not password:
            return None
        result = authenticate(username, password)
        if not result.ok:
            if request is not None and result.mailbox is not None:
                request.courriel_login_disabled = True  # type: ignore[attr-defined]
            return None
        return result.mailbox

    def get_user(self, user_id: int) -> Mailbox | None:
        mailbox = Mailbox.objects.select_related("domain").filter(pk=user_id).first()
        if mailbox is None or mailbox.login_disabled:
            return None
        return mailbox
