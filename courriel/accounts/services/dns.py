"""DNS records a customer publishes so that mail reaches us and our mail is trusted:
MX, SPF, DKIM and DMARC (and the same MX/SPF for each domain alias)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from courriel.accounts.dkimkeys import ensure_key, public_key_base64
from courriel.accounts.models import Domain
from courriel.i18n import gettext as _


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    value: str
    purpose: str

    def zone_line(self) -> str:
        if self.type == "TXT":
            # TXT strings are at most 255 characters: split long values (DKIM keys).
            parts = [self.value[i : i + 255] for i in range(0, len(self.value), 255)]
            value = " ".join(f'"{part}"' for part in parts)
        else:
            value = self.value
        return f"{self.name}. 3600 IN {self.type} {value}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def spf_value(domain: Domain) -> str:
    server = domain.server
    mechanisms = ["mx", f"a:{server.hostname}"]
    if domain.ip_address or server.ip_address:
        ip = domain.ip_address or server.ip_address
        mechanisms.append(f"ip6:{ip}" if ":" in str(ip) else f"ip4:{ip}")
    return "v=spf1 " + " ".join(mechanisms) + " ~all"


def dns_records(domain: Domain) -> list[DnsRecord]:
    """The records, each with its purpose in the reader's language (the panel's)."""
    host = domain.server.hostname
    key = public_key_base64(ensure_key(domain))
    records = [
        DnsRecord(domain.name, "MX", f"10 {host}.", _("mail for the domain comes to us")),
        DnsRecord(domain.name, "TXT", spf_value(domain), _("SPF: our servers may send its mail")),
        DnsRecord(
            f"{domain.dkim_selector}._domainkey.{domain.name}",
            "TXT",
            f"v=DKIM1; k=rsa; p={key}",
            _("DKIM: public key of the signature on its outgoing mail"),
        ),
        DnsRecord(
            f"_dmarc.{domain.name}",
            "TXT",
            f"v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@{domain.name}",
            _("DMARC: what receivers do with unsigned mail claiming to be from it"),
        ),
    ]
    for alias in domain.domain_aliases.all():
        alias_of = _("alias of %(domain)s") % {"domain": domain.name}
        records.append(DnsRecord(alias.name, "MX", f"10 {host}.", alias_of))
        records.append(DnsRecord(alias.name, "TXT", spf_value(domain), "SPF"))
    return records
