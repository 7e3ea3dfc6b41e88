"""`courriel edge dovecot`: a complete Dovecot configuration serving Courriel's mail.

Dovecot serves IMAP and POP3 on the very Maildirs Courriel writes (same paths, same
unprivileged uid, same UIDs, flags and POP3 UIDLs), and checks the passwords Courriel
stores (Argon2id hashes in Dovecot's own `{ARGON2ID}` form) straight from Courriel's
database, so a password changed in the panel works in Dovecot at once, and a login
disabled there is refused. Quotas come from the same figures (the userdb's
`quota_rule`, and the `maildirsize` file both keep). Its auth service also signs in
Postfix's submission users (SASL).
"""

from __future__ import annotations

import contextlib
import os
import pwd
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from courriel.config import Config
from courriel.edge import learning, signin_policy
from courriel.edge.postfix import Listen
from courriel.errors import ConfigError


@dataclass(frozen=True)
class DovecotOptions:
    config_dir: Path
    base_dir: Path
    imap: Listen | None
    imaps: Listen | None
    pop3: Listen | None
    pop3s: Listen | None
    auth: Listen  # SASL for Postfix's submission
    log_file: Path | None = None


def mail_owner(config: Config) -> pwd.struct_passwd:
    """The service user, whose uid owns every Maildir (Dovecot refuses uid 0)."""
    name = str(config.general.user).strip()
    entry = pwd.getpwnam(name) if name else pwd.getpwuid(os.geteuid())
    if entry.pw_uid == 0:
        raise ConfigError(
            "Dovecot will not serve mail owned by root: set [general] user (default "
            "courriel) and start `courriel serve` as root once, so that the Maildirs "
            "become that user's."
        )
    return entry


def _sql_connect(config: Config) -> tuple[str, str]:
    """(driver, connect string) for Dovecot's sql driver, from [database] url."""
    url = config.database_url
    if not url:
        return "sqlite", str(config.sqlite_path)
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"[database] url: Dovecot cannot read {parsed.scheme!r} databases")
    parts = [f"host={parsed.hostname or 'localhost'}", f"dbname={parsed.path.lstrip('/')}"]
    if parsed.port:
        parts.append(f"port={parsed.port}")
    if parsed.username:
        parts.append(f"user={unquote(parsed.username)}")
    if parsed.password:
        parts.append(f"password={unquote(parsed.password)}")
    return "pgsql", " ".join(parts)


# The mailbox a login name (monsite0001) or its primary address (info@monsite.be)
# names, if its login is not disabled.
MAILBOX_MATCH = (
    "NOT m.login_disabled AND (m.login = '%Lu' OR m.id IN ( \\\n"
    "    SELECT a.mailbox_id FROM accounts_address a \\\n"
    "    JOIN accounts_domain d ON d.id = a.domain_id \\\n"
    "    WHERE a.kind = 'primary' AND a.enabled \\\n"
    "      AND a.local_part = '%Ln' AND d.name = '%Ld'))"
)


def _sql_head(config: Config) -> str:
    driver, connect = _sql_connect(config)
    return f"driver = {driver}\nconnect = {connect}\ndefault_pass_scheme = ARGON2ID\n"


def app_sql_conf(config: Config) -> str:
    """The second passdb: the mailbox's app passwords (Courriel's Argon2id hashes of
    the form they are shown in), the one whose first characters the typed password
    starts with."""
    return f"""\
# Courriel's app passwords, read by Dovecot's auth processes after the account
# password failed: written by `courriel edge dovecot` (0600).
{_sql_head(config)}
password_query = \\
  SELECT m.login AS user, p.password_hash AS password \\
  FROM accounts_apppassword p JOIN accounts_mailbox m ON m.id = p.mailbox_id \\
  WHERE {MAILBOX_MATCH} \\
    AND p.prefix = lower(substr('%w', 1, 4))
"""


def sql_conf(config: Config) -> str:
    root = str(config.mail_root).replace("'", "''")
    owner = mail_owner(config)
    return f"""\
# Courriel's database, read by Dovecot's auth processes: written by
# `courriel edge dovecot`. It may hold the database password: root's alone (0600).
{_sql_head(config)}
# A login name (monsite0001) or its primary address (info@monsite.be); a login that
# the domain owner disabled finds nothing, and so does a mailbox with two-factor
# sign-in on (mail programs then use app passwords: dovecot-sql-app.conf.ext). The
# answer's `user` is always the login.
password_query = \\
  SELECT m.login AS user, m.password_hash AS password \\
  FROM accounts_mailbox m \\
  WHERE {MAILBOX_MATCH} \\
    AND NOT EXISTS (SELECT 1 FROM accounts_twofactor t \\
      WHERE t.mailbox_id = m.id AND t.confirmed_at IS NOT NULL)

# The Maildir Courriel writes, its owner, and the quota the panel sets (none when
# unlimited).
user_query = \\
  SELECT '{root}/' || substr(m.maildir, 1, length(m.maildir) - 8) AS home, \\
    'maildir:{root}/' || m.maildir AS mail, \\
    {owner.pw_uid} AS uid, {owner.pw_gid} AS gid, \\
    CASE WHEN m.quota IS NULL THEN NULL ELSE '*:bytes=' || m.quota END AS quota_rule \\
  FROM accounts_mailbox m WHERE m.login = '%Lu'

iterate_query = SELECT login AS user FROM accounts_mailbox
"""


def _inet(name: str, listen: Listen | None, ssl: bool = False) -> list[str]:
    if listen is None:
        return [f"  inet_listener {name} {{", "    port = 0", "  }"]
    lines = [
        f"  inet_listener {name} {{",
        f"    address = {listen.address}",
        f"    port = {listen.port}",
    ]
    if ssl:
        lines.append("    ssl = yes")
    return [*lines, "  }"]


def dovecot_conf(config: Config, options: DovecotOptions) -> str:
    owner = mail_owner(config)
    protocols = [
        name
        for name, listeners in (
            ("imap", (options.imap, options.imaps)),
            ("pop3", (options.pop3, options.pop3s)),
        )
        if any(listeners)
    ]
    sql = options.config_dir / "dovecot-sql.conf.ext"
    lines = [
        f"# Dovecot for Courriel on {config.hostname}: written by `courriel edge dovecot` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "# Serves the Maildirs of Courriel's data directory with the passwords of its",
        "# database. Write it again with the same command after changing Courriel's",
        "# [general] user, [mail] root or [database] url.",
        "",
        f"protocols = {' '.join(protocols)}",
        f"base_dir = {options.base_dir}",
        f"state_dir = {options.base_dir}/state",
        "listen = *, ::",
        f"hostname = {config.hostname}",
        "",
        "# TLS with the platform's certificate; passwords only over TLS (loopback aside).",
        "ssl = yes",
        f"ssl_cert = <{config.tls_cert}",
        f"ssl_key = <{config.tls_key}",
        "ssl_min_protocol = TLSv1.2",
        "disable_plaintext_auth = yes",
        "",
        "# The Maildirs are Courriel's service user's (Dovecot never runs mail as root).",
        f"mail_uid = {owner.pw_uid}",
        f"mail_gid = {owner.pw_gid}",
        f"first_valid_uid = {owner.pw_uid}",
        f"last_valid_uid = {owner.pw_uid}",
        f"first_valid_gid = {owner.pw_gid}",
        f"last_valid_gid = {owner.pw_gid}",
        "mail_location = maildir:~/Maildir",
        "# POP3 UIDLs as Courriel gives them: leave-on-server clients see no new mail",
        "# when a provider moves between the two.",
        "pop3_uidl_format = %08Xu%08Xv",
        "",
        "# Folder names as Courriel shows them (INBOX/Sent, Projets/2024 on the wire,",
        "# .Projets.2024 on disk), the special folders subscribed, as Courriel makes them.",
        "namespace inbox {",
        "  inbox = yes",
        "  separator = /",
        "  mailbox Drafts {",
        "    special_use = \\Drafts",
        "    auto = subscribe",
        "  }",
        "  mailbox Sent {",
        "    special_use = \\Sent",
        "    auto = subscribe",
        "  }",
        "  mailbox Junk {",
        "    special_use = \\Junk",
        "    auto = subscribe",
        "  }",
        "  mailbox Trash {",
        "    special_use = \\Trash",
        "    auto = subscribe",
        "  }",
        "}",
        "",
        "# Quotas from Courriel's figures (userdb quota_rule), counted in `maildirsize`,",
        "# the file Courriel keeps too.",
        "mail_plugins = $mail_plugins quota",
        "protocol imap {",
        f"  mail_plugins = $mail_plugins imap_quota{learning.imap_plugins(config)}",
        "}",
        "plugin {",
        "  quota = maildir:User quota",
        *learning.plugin_settings(config, options.config_dir),
        "}",
        "",
        "# Passwords and mailboxes from Courriel's database: the account password,",
        "# then the mailbox's app passwords.",
        "passdb {",
        "  driver = sql",
        f"  args = {sql}",
        "}",
        "passdb {",
        "  driver = sql",
        f"  args = {options.config_dir / 'dovecot-sql-app.conf.ext'}",
        "}",
        "userdb {",
        "  driver = sql",
        f"  args = {sql}",
        "}",
        "# Courriel's sign-in throttle (per login and address, as on its own doors): asked",
        "# before each password check, told each result (courriel/edge/signin_policy.py).",
        f"!include {options.config_dir / 'dovecot-policy.conf.ext'}",
        "service auth-worker {",
        "  # Reads Courriel's database (an SQLite file is the service user's).",
        f"  user = {owner.pw_name}",
        "}",
        "# Postfix's submission service signs users in here (smtpd_sasl_type = dovecot).",
        "service auth {",
        "  inet_listener {",
        f"    address = {options.auth.address}",
        f"    port = {options.auth.port}",
        "  }",
        "}",
        "",
        "service imap-login {",
        *_inet("imap", options.imap),
        *_inet("imaps", options.imaps, ssl=True),
        "}",
        "service pop3-login {",
        *_inet("pop3", options.pop3),
        *_inet("pop3s", options.pop3s, ssl=True),
        "}",
    ]
    if options.log_file:
        lines += ["", f"log_path = {options.log_file}"]
    return "\n".join(lines) + "\n"


SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
WEB_CA_COPY = "courriel-web-certificate.pem"


def policy_conf(config: Config, key: str, config_dir: Path) -> str:
    """Dovecot's authentication policy settings, pointing at `courriel serve`'s web
    listener. Dovecot checks its certificate: a generated one (a copy of it, which
    Dovecot's auth process may read, is its CA; it names 127.0.0.1 and the host name),
    or the provider's (the system's CAs, by the host name)."""
    bind = str(config.web.bind)
    if config.tls_generated:
        host = "127.0.0.1" if bind in ("", "0.0.0.0", "::", "127.0.0.1") else config.hostname
        ca_file = str(config_dir / WEB_CA_COPY)
    else:
        host, ca_file = config.hostname, SYSTEM_CA_FILE
    return "\n".join(
        [
            "# Written by `courriel edge dovecot`: it holds the key `courriel serve` checks.",
            f"auth_policy_server_url = https://{host}:{config.web.port}/edge/signin-policy",
            f"auth_policy_server_api_header = {signin_policy.HEADER}: {key}",
            f"ssl_client_ca_file = {ca_file}",
            f"auth_policy_hash_nonce = {key}",
            "auth_policy_hash_truncate = 0",
            "auth_policy_request_attributes = login=%{requested_username} "
            "pwhash=%{hashed_password} remote=%{rip} protocol=%s",
            "auth_policy_check_before_auth = yes",
            "auth_policy_check_after_auth = no",
            "auth_policy_report_after_auth = yes",
            "# Courriel down: sign-ins go on unthrottled rather than all refused.",
            "auth_policy_reject_on_fail = no",
            "",
        ]
    )


def write(config: Config, options: DovecotOptions) -> list[Path]:
    """dovecot.conf (0644), dovecot-sql*.conf.ext and dovecot-policy.conf.ext (0600:
    they may hold a password, the sign-in policy's key),
    and, with an rspamd controller, the learning scripts (`courriel.edge.learning`):
    their directories belong to the mail user, who runs them (Dovecot compiles a Sieve
    script beside it on first use), the program to its group (it holds a password)."""
    options.config_dir.mkdir(parents=True, exist_ok=True)
    options.config_dir.chmod(0o755)
    owner = mail_owner(config)
    key = signin_policy.ensure_key(config, owner.pw_gid)
    written = []
    for name, text, mode in (
        ("dovecot.conf", dovecot_conf(config, options), 0o644),
        ("dovecot-policy.conf.ext", policy_conf(config, key, options.config_dir), 0o600),
        *_certificate_copy(config),
        ("dovecot-sql.conf.ext", sql_conf(config), 0o600),
        ("dovecot-sql-app.conf.ext", app_sql_conf(config), 0o600),
        *learning.files(config),
    ):
        path = options.config_dir / name
        if path.parent != options.config_dir:
            path.parent.mkdir(exist_ok=True)
            _give(path.parent, owner.pw_uid, owner.pw_gid)
        tmp = path.with_name(f".{path.name}.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        if path.parent != options.config_dir:
            _give(tmp, -1, owner.pw_gid)
        tmp.replace(path)
        written.append(path)
    return written


def _certificate_copy(config: Config) -> list[tuple[str, str, int]]:
    """The generated certificate (public), where Dovecot's auth process can read it."""
    if not config.tls_generated or not config.tls_cert.exists():
        return []
    return [(WEB_CA_COPY, config.tls_cert.read_text(), 0o644)]


def _give(path: Path, uid: int, gid: int) -> None:
    """chown when we may (as root, as `courriel edge dovecot` is run); else leave it."""
    with contextlib.suppress(PermissionError):
        os.chown(path, uid, gid)
