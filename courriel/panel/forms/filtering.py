"""Forms of the incoming-check settings: a mailbox's spam thresholds, and (for the
provider) how DMARC failures of mail to a domain are treated."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel.inbound.schemas import DomainFilteringOut, MailboxSpamOut
from courriel.panel.forms.base import PanelForm

DMARC_LABELS = [
    ("follow", _("Follow the sender's policy: refuse (p=reject) or Junk folder (p=quarantine)")),
    ("quarantine", _("Never refuse: failures go to the Junk folder")),
    ("monitor", _("Only report the result in the Authentication-Results header")),
]


def _score(label: Any, help_text: Any) -> forms.CharField:
    return forms.CharField(label=label, max_length=20, required=False, help_text=help_text)


class MailboxSpamForm(PanelForm):
    junk_score = _score(
        _("Junk folder from score"),
        _(
            "Mail scored this high by the spam filter goes to the Junk folder. Empty: "
            'the filter\'s own "probable spam" level (6).'
        ),
    )
    reject_score = _score(
        _("Refuse from score"),
        _(
            "Mail scored this high is refused; the sender is told. Empty: the "
            "filter's own level (15)."
        ),
    )

    @staticmethod
    def initial_from(current: MailboxSpamOut) -> dict[str, Any]:
        def text(value: float | None) -> str:
            return "" if value is None else f"{value:g}"

        return {"junk_score": text(current.junk_score), "reject_score": text(current.reject_score)}


class DomainFilteringForm(PanelForm):
    dmarc = forms.ChoiceField(
        label=_("Mail failing the sender's DMARC policy"), choices=DMARC_LABELS
    )

    @staticmethod
    def initial_from(current: DomainFilteringOut) -> dict[str, Any]:
        return {"dmarc": current.dmarc}
