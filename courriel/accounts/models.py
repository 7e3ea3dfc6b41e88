"""The account model of the manual: hosting servers, plans, virtual servers (domains),
domain aliases, mailboxes, aliases and the address registry.

Rules live in `courriel.accounts.services`; these classes hold data and the few
derived values every interface shows the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from django.db import models
from django.utils.translation import gettext_lazy as _

from courriel.accounts.addresses import to_unicode


class HostingServer(models.Model):
    """A machine that hosts mail domains (the manual's maximusconfessor, moses...)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    hostname = models.CharField(_("host name"), max_length=253, unique=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    admin_url = models.CharField(_("administration URL"), max_length=300, blank=True)
    accepts_domains = models.BooleanField(_("takes new domains"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_admin_url(self) -> str:
        return self.admin_url or f"https://{self.hostname}:10000/"


class Plan(models.Model):
    """An account plan ("formule d'hébergement"); None means unlimited everywhere."""

    name = models.SlugField(_("name"), max_length=50, unique=True)
    label = models.CharField(_("label"), max_length=100, blank=True)
    web_quota = models.BigIntegerField(_("web quota"), null=True, blank=True)
    mail_quota = models.BigIntegerField(_("mail quota"), null=True, blank=True)
    max_mailboxes = models.IntegerField(_("mailboxes"), null=True, blank=True)
    max_servers = models.IntegerField(_("virtual servers"), null=True, blank=True)
    max_domain_aliases = models.IntegerField(_("domain aliases"), null=True, blank=True)
    default_mailbox_quota = models.BigIntegerField(
        _("default mailbox quota"), null=True, blank=True
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label or self.name


class OwnedName(models.Model):
    """A domain name mail is hosted for (a virtual server or a domain alias), and whether
    its control was proven. A name a customer added without proof is *pending*: it
    takes no mail and changes no routing (`courriel.accounts.resolution` ignores it),
    so nobody can capture mail for a name that is not theirs (gmail.com...)."""

    PROVIDER = "provider"  # created or approved by the hosting provider
    SUBDOMAIN = "subdomain"  # under a name the same customer already controls
    DNS = "dns"  # the _courriel-verify TXT record was found
    MIGRATION = "migration"  # existed before ownership was checked

    verified_at = models.DateTimeField(_("verified on"), null=True, blank=True)
    verified_by = models.CharField(_("verified by"), max_length=20, blank=True)
    # The value of the TXT record `_courriel-verify.<name>` that proves control.
    verification_token = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True

    @property
    def pending(self) -> bool:
        return self.verified_at is None


class Domain(OwnedName):
    """A virtual server: a mail domain of a customer, or a sub-server of one.

    A sub-server has a parent and no plan of its own: it shares the parent's plan,
    owner and limits (Virtualmin's model, one level deep).
    """

    name = models.CharField(_("domain name"), max_length=253, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="subservers"
    )
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT)
    server = models.ForeignKey(HostingServer, on_delete=models.PROTECT, related_name="domains")
    owner = models.ForeignKey(
        "Mailbox",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_domains",
    )
    prefix = models.CharField(_("login prefix"), max_length=40, unique=True)
    admin_group = models.CharField(_("administration group"), max_length=64)
    home_directory = models.CharField(_("home directory"), max_length=500)
    description = models.CharField(_("description"), max_length=300, blank=True)
    contact_email = models.CharField(_("contact e-mail"), max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    features = models.JSONField(_("enabled features"), default=list)
    created_at = models.DateTimeField(_("created on"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    # DKIM key of the domain (PEM, RSA 2048), made when the domain is created; the
    # public half is published as <selector>._domainkey.<domain> TXT.
    # The provider requires two-factor sign-in of this customer's owner.
    require_2fa = models.BooleanField(_("owners must use two-factor sign-in"), default=False)
    dkim_selector = models.CharField(max_length=63, default="courriel")
    dkim_private_key = models.TextField(blank=True)

    class Meta(OwnedName.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return to_unicode(self.name)

    @property
    def top(self) -> Domain:
        return self.parent if self.parent_id else self

    @property
    def effective_plan(self) -> Plan:
        top = self.top
        assert top.plan is not None
        return top.plan

    @property
    def is_subserver(self) -> bool:
        return self.parent_id is not None


class DomainAlias(OwnedName):
    """Another domain name whose mail goes to the same addresses (monsite.eu -> monsite.be)."""

    name = models.CharField(_("alias domain"), max_length=253, unique=True)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="domain_aliases")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OwnedName.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return to_unicode(self.name)


class Mailbox(models.Model):
    """A mailbox user: a login, a password, a Maildir and what happens to its mail.

    Its addresses (primary and additional) are rows of the `Address` registry.
    Mailboxes also sign in to the panel (owners and self-service users), hence
    `is_authenticated`, `is_active` and `last_login` for Django's session machinery.
    """

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="mailboxes")
    login = models.CharField(_("login"), max_length=64, unique=True)
    real_name = models.CharField(_("real name"), max_length=255, blank=True)
    password_hash = models.CharField(max_length=255)
    password_changed_at = models.DateTimeField(_("password last changed"), null=True)
    login_disabled = models.BooleanField(_("login temporarily disabled"), default=False)
    quota = models.BigIntegerField(_("home directory quota"), null=True, blank=True)
    deliver_normally = models.BooleanField(_("deliver to this user normally"), default=True)
    forward_to = models.JSONField(_("forward to other addresses"), default=list)
    autoreply_enabled = models.BooleanField(_("send automatic reply"), default=False)
    autoreply_message = models.TextField(_("automatic reply message"), blank=True)
    autoreply_interval = models.IntegerField(
        _("minimum time between autoreplies (seconds)"), null=True, blank=True
    )
    autoreply_start = models.DateField(_("automatic reply start date"), null=True, blank=True)
    autoreply_end = models.DateField(_("automatic reply end date"), null=True, blank=True)
    last_mail_at = models.DateTimeField(_("new mail received"), null=True, blank=True)
    last_login = models.DateTimeField(null=True, blank=True)
    maildir = models.CharField(_("inbox mail file"), max_length=500)
    language = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["login"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.login

    # Django's auth machinery treats a signed-in mailbox like a user.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return not self.login_disabled

    # Set by the services when a password change revoked the mailbox's API tokens (how
    # many), so that the page or the API answer can say so. Not a database column.
    tokens_revoked: int = 0

    def get_session_auth_hash(self) -> str:
        """Changing the password ends the mailbox's other panel sessions."""
        return self._session_hash(None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        """The same with each of `SECRET_KEY_FALLBACKS` (Django 5.2 asks for these when
        a session's hash does not match: without them, a session whose password was
        changed elsewhere made every page fail instead of going to the login page)."""
        from django.conf import settings

        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret)

    def _session_hash(self, secret: str | None) -> str:
        from django.utils.crypto import salted_hmac

        return salted_hmac(
            "courriel.mailbox.session", self.password_hash, secret=secret, algorithm="sha256"
        ).hexdigest()

    def maildir_path(self, mail_root: Path) -> Path:
        return mail_root / self.maildir


class Address(models.Model):
    """The registry of every address of a domain: one row per local part.

    Mailbox primary and additional addresses and aliases all claim their local part
    here, so the database itself guarantees that an address means one thing.
    The catch-all alias ("All mailboxes") claims the empty local part.
    """

    PRIMARY = "primary"
    ADDITIONAL = "additional"
    ALIAS = "alias"
    KINDS = [(PRIMARY, _("primary")), (ADDITIONAL, _("additional")), (ALIAS, _("alias"))]

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="addresses")
    local_part = models.CharField(max_length=64)
    kind = models.CharField(max_length=12, choices=KINDS)
    enabled = models.BooleanField(default=True)
    mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.CASCADE, related_name="addresses"
    )
    alias = models.ForeignKey(
        "Alias", null=True, blank=True, on_delete=models.CASCADE, related_name="addresses"
    )

    class Meta:
        ordering = ["local_part"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "local_part"], name="unique_address"),
            models.CheckConstraint(
                condition=(
                    models.Q(mailbox__isnull=False, alias__isnull=True)
                    | models.Q(mailbox__isnull=True, alias__isnull=False)
                ),
                name="address_has_one_target",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def email(self) -> str:
        return f"{self.local_part or '*'}@{self.domain.name}"


class Alias(models.Model):
    """A mail alias ("Edit Mail Aliases"): a name, or every unknown name (catch-all),
    with destinations: mailboxes of the domain, other addresses, everyone, or a bounce.
    """

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="aliases")
    mailboxes = models.ManyToManyField(Mailbox, blank=True, related_name="alias_memberships")
    forward_to = models.JSONField(_("forward to other addresses"), default=list)
    everyone = models.BooleanField(_("forward to everyone in domain"), default=False)
    bounce = models.BooleanField(_("bounce mail"), default=False)
    bounce_message = models.CharField(_("bounce message"), max_length=300, blank=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "aliases"


# --- sign-in throttling (courriel.accounts.throttle) -----------------------------------
# Kept in the database so that every process (the main one and the SMTP workers) and
# every door (panel, API, IMAP, POP3, SMTP AUTH) sees the same counts, and known
# addresses survive a restart.


class SignInFailure(models.Model):
    """One failed sign-in: which login, from where, and a short keyed digest of the
    password tried (so that the same wrong password tried again counts once; 32 bits
    cannot be reversed, they only tell two attempts apart)."""

    login = models.CharField(max_length=254)
    address = models.CharField(max_length=64)
    attempt = models.CharField(max_length=16)
    door = models.CharField(max_length=8)
    known = models.BooleanField(default=False)  # from an address the login used before
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["address", "at"], name="signin_failure_address"),
            models.Index(fields=["login", "at"], name="signin_failure_login"),
        ]


class KnownAddress(models.Model):
    """An address a login signed in from successfully: it gets in at once, whatever
    others are guessing."""

    login = models.CharField(max_length=254)
    address = models.CharField(max_length=64)
    last_success = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["login", "address"], name="unique_known_address")
        ]


class SignInPace(models.Model):
    """A login guessed from many addresses: checks from unknown addresses take turns,
    `interval` seconds apart, until `until`."""

    login = models.CharField(max_length=254, unique=True)
    next_check = models.DateTimeField()
    interval = models.FloatField(default=1.0)
    until = models.DateTimeField()


class FailureReport(models.Model):
    """When the last "failed sign-ins" mail about a login went out (once a day)."""

    login = models.CharField(max_length=254, unique=True)
    sent_at = models.DateTimeField()


# --- two-factor sign-in and app passwords (courriel.accounts.services.twofactor) -------


class TwoFactor(models.Model):
    """TOTP (RFC 6238) for one person: a mailbox (owner or user) or a provider admin.
    The shared secret is kept encrypted with a key derived from the secret key."""

    mailbox = models.OneToOneField(
        Mailbox, null=True, blank=True, on_delete=models.CASCADE, related_name="two_factor"
    )
    user = models.OneToOneField(
        "auth.User",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="courriel_two_factor",
    )
    secret = models.CharField(max_length=255)
    confirmed_at = models.DateTimeField(null=True, blank=True)  # None: enrolment not finished
    last_step = models.BigIntegerField(default=0)  # the last time step used: no replay
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, mailbox__isnull=True)
                    | models.Q(user__isnull=True, mailbox__isnull=False)
                ),
                name="two_factor_has_one_holder",
            )
        ]


class RecoveryCode(models.Model):
    """A one-time code for a sign-in without the phone; only its SHA-256 is kept (the
    codes are 80 random bits: nothing to brute-force)."""

    two_factor = models.ForeignKey(
        TwoFactor, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)


class AppPassword(models.Model):
    """A password for one mail program (IMAP, POP3, SMTP), named, revocable, shown once
    and stored as an Argon2id hash like the account password; with two-factor sign-in
    on, the mail protocols take only these."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="app_passwords")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=8)  # the first characters, to find it quickly
    password_hash = models.CharField(max_length=255)
    created_at = models.DateTimeField(_("created on"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["mailbox", "prefix"], name="app_password_prefix")]
