"""`courriel edge postfix`: a complete Postfix instance configuration for this server.

Postfix faces the Internet on port 25 (and 587); Courriel stays behind it on loopback:
recipients are checked at RCPT through our socketmap (so nothing is accepted that we
would bounce), greylisting through our policy service, and accepted mail is handed
to our LMTP. Every setting that matters is written out with the reason for it, so
that the provider can read the files and `postfix check` them before starting.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from courriel.config import Config
from courriel.units import parse_size

POLICY_TIMEOUT = "10s"


@dataclass(frozen=True)
class Listen:
    address: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int) -> Listen:
        value = text.strip()
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else default_port
        elif value.count(":") == 1:
            host, _, port_text = value.partition(":")
            port = int(port_text)
        else:
            host, port = value, default_port
        ipaddress.ip_address(host)
        if not 0 < port < 65536:
            raise ValueError(f"port out of range in {text!r}")
        return cls(host, port)

    @property
    def master_name(self) -> str:
        """master.cf service name: `25` on every address, else `addr:port`."""
        if self.address in ("0.0.0.0", "::"):
            return str(self.port)
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class PostfixOptions:
    config_dir: Path
    queue_dir: Path
    data_dir: Path
    smtp: Listen
    submission: Listen | None
    dovecot_auth: str  # where Dovecot's auth service listens for SASL (inet:host:port)
    relay: Listen  # Courriel's [relay] listener: where submitted mail goes
    log_file: Path | None = None  # Postfix's own log file; None: syslog


def _inet(config: Config, section: str) -> str:
    values = getattr(config, section)
    return f"inet:{values.bind}:{values.port}"


def main_cf(config: Config, options: PostfixOptions) -> str:
    hostname = config.hostname
    socketmap = f"socketmap:{_inet(config, 'socketmap')}"
    policy = (
        f"check_policy_service {{ {_inet(config, 'policy')}, timeout={POLICY_TIMEOUT}, "
        "default_action=DUNNO }"
    )
    greylisting = bool(config.greylist.enabled)
    size = parse_size(config.mail.message_size_limit, allow_unlimited=False)
    trusted = (
        " ".join(f"[{n}]" if ":" in n else n for n in config.smtp.trusted_networks) or "127.0.0.0/8"
    )
    listen = [options.smtp] + ([options.submission] if options.submission else [])
    interfaces = sorted({item.address for item in listen})
    any_address = any(a in ("0.0.0.0", "::") for a in interfaces)
    v6 = any(":" in a for a in interfaces)
    lines = [
        f"# Postfix for Courriel on {hostname}: written by `courriel edge postfix` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "# Postfix takes mail from the Internet; Courriel (`courriel serve` with",
        '# [general] mode = "edge") decides who exists, greylists, and stores the mail.',
        "# Write these files again with the same command after changing Courriel's",
        "# listeners or [mail] message_size_limit; check with `postfix -c DIR check`.",
        "",
        "compatibility_level = 3.6",
        f"queue_directory = {options.queue_dir}",
        f"data_directory = {options.data_dir}",
        f"myhostname = {hostname}",
        "myorigin = $myhostname",
        f"inet_interfaces = {'all' if any_address else ', '.join(interfaces)}",
        f"inet_protocols = {'all' if v6 or any_address else 'ipv4'}",
        "smtpd_banner = $myhostname ESMTP",
        "biff = no",
        "",
        "# No local delivery and no aliases of Postfix's own: every address is Courriel's.",
        "mydestination =",
        "local_recipient_maps =",
        "local_transport = error:5.1.1 no local delivery here",
        "alias_maps =",
        "alias_database =",
        "# Addresses reach Courriel whole: it knows the user+tag sub-addresses itself.",
        "recipient_delimiter =",
        "",
        "# Clients never greylisted ([smtp] trusted_networks). They do NOT relay without",
        "# signing in: relaying is for authenticated submission only.",
        f"mynetworks = {trusted}",
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination",
        "",
        "# Courriel's domains and recipients, looked up live (socketmap_table(5)), so an",
        "# unknown recipient is refused at RCPT: no message is accepted only to bounce",
        "# later to a sender who may be forged.",
        f"virtual_mailbox_domains = {socketmap}:domain",
        f"virtual_mailbox_maps = {socketmap}:mailbox",
        "# One look-up per recipient: the `recipient` map gives Courriel's own refusal",
        "# (550 5.1.1 for an unknown address, an alias's bounce text, 554 5.4.6 for a",
        "# loop) and DUNNO for every address it delivers, so Postfix's second check of",
        "# the same address (virtual_mailbox_maps) is not made on this port; the",
        "# submission port, which has no recipient restrictions, keeps it.",
        "smtpd_reject_unlisted_recipient = no",
        "smtpd_recipient_restrictions =",
        "    reject_non_fqdn_recipient,",
        f"    check_recipient_access {socketmap}:recipient,",
        *([f"    {policy}"] if greylisting else []),
        *(
            [
                "# Bounces (null sender) are greylisted at DATA; other mail is not asked again.",
                "smtpd_restriction_classes = courriel_null_sender",
                f"courriel_null_sender = {policy}",
                "smtpd_data_restrictions =",
                "    reject_unauth_pipelining,",
                "    check_sender_access inline:{ <>=courriel_null_sender }",
                "# While `courriel serve` restarts, the policy service's default_action lets",
                "# mail through ungreylisted, look-ups fail temporarily (451: the sender",
                "# retries) and accepted mail waits in Postfix's queue: nothing is refused",
                "# for good.",
            ]
            if greylisting
            else [
                "# [greylist] enabled = false: Postfix does not ask the policy service (write",
                "# these files again after turning greylisting on).",
                "smtpd_data_restrictions = reject_unauth_pipelining",
                "# While `courriel serve` restarts, look-ups fail temporarily (451: the sender",
                "# retries) and accepted mail waits in Postfix's queue.",
            ]
        ),
        "",
        "# Accepted mail goes to Courriel's LMTP, with the original client's address",
        "# (XFORWARD) for the checks Courriel makes on it.",
        f"virtual_transport = lmtp:{_inet(config, 'lmtp')}",
        "lmtp_send_xforward_command = yes",
        f"lmtp_destination_recipient_limit = {config.smtp.max_recipients}",
        "lmtp_destination_concurrency_limit = 10",
        "# Keep LMTP connections to Courriel open between messages, not only when a",
        "# backlog builds up: a connection, LHLO and QUIT less per message on both sides.",
        "# (static:all: Courriel is this instance's only LMTP destination; its address",
        "# cannot be listed, as a value with a colon is read as a lookup table.)",
        "lmtp_connection_cache_destinations = static:all",
        "",
        "# The same size limit as Courriel's [mail] message_size_limit (Courriel's LMTP",
        "# allows for the headers Postfix adds, so it never refuses what Postfix took).",
        f"message_size_limit = {size}",
        "mailbox_size_limit = 0",
        f"smtpd_recipient_limit = {config.smtp.max_recipients}",
        "",
        "# SMTP smuggling: a bare LF is never an end of line (Postfix 3.7.10+).",
        "smtpd_forbid_bare_newline = normalize",
        "smtpd_forbid_bare_newline_exclusions =",
        "smtputf8_enable = yes",
        "smtpd_helo_required = yes",
        "disable_vrfy_command = yes",
        "",
        "# TLS with the platform's certificate (Courriel's [tls] cert and key).",
        f"smtpd_tls_cert_file = {config.tls_cert}",
        f"smtpd_tls_key_file = {config.tls_key}",
        "smtpd_tls_security_level = may",
        "smtpd_tls_received_header = yes",
        "smtpd_tls_loglevel = 1",
        "smtp_tls_security_level = may",
        "smtp_tls_loglevel = 1",
    ]
    if options.submission:
        lines += [
            "",
            "# Submission (see master.cf): users sign in against Dovecot's auth service,",
            "# which checks Courriel's passwords; each login may only send as the",
            "# addresses that deliver to its own mailbox (Courriel's senders map); the",
            "# signed-in login goes on top in the Received header, for Courriel's [relay].",
            "smtpd_sasl_type = dovecot",
            f"smtpd_sasl_path = {options.dovecot_auth}",
            "smtpd_sasl_authenticated_header = yes",
            f"smtpd_sender_login_maps = {socketmap}:senders",
        ]
    if options.log_file:
        lines += [
            "",
            f"maillog_file = {options.log_file}",
            f"maillog_file_prefixes = {options.log_file.parent}",
        ]
    return "\n".join(lines) + "\n"


MASTER_BASE = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def master_cf(options: PostfixOptions) -> str:
    lines = [
        "# Postfix services for Courriel: written by `courriel edge postfix`.",
        "# Not chrooted: the socketmap, policy and LMTP services are on loopback TCP.",
        f"{options.smtp.master_name:<9} inet  n       -       n       -       -       smtpd",
    ]
    if options.submission:
        lines += [
            f"{options.submission.master_name:<9} inet  n       -       n       -       -       "
            "smtpd",
            "  -o syslog_name=postfix/submission",
            "  -o smtpd_tls_security_level=encrypt",
            "  -o smtpd_sasl_auth_enable=yes",
            "  -o smtpd_tls_auth_only=yes",
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject",
            "  -o smtpd_sender_restrictions=reject_sender_login_mismatch",
            "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject",
            "  -o smtpd_recipient_restrictions=",
            "  -o smtpd_reject_unlisted_recipient=yes",
            "  -o smtpd_data_restrictions=",
            f"  -o content_filter=courriel-relay:[{options.relay.address}]:{options.relay.port}",
            "# Submitted mail goes to Courriel, which signs it (DKIM) and sends it from its",
            "# own queue, as its own submission port does.",
            "courriel-relay unix -   -       n       -       -       smtp",
            "  -o syslog_name=postfix/courriel-relay",
            "  -o smtp_tls_security_level=none",
        ]
    return "\n".join(lines) + "\n" + MASTER_BASE


def _directories(options: PostfixOptions) -> None:
    """Postfix's directories as `postfix check` wants them: the configuration and the
    queue root-owned and readable, the data directory Postfix's (mail_owner) own."""
    for path in (options.config_dir, options.queue_dir):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        owner = pwd.getpwnam("postfix")
    except KeyError:
        return  # Postfix is not installed yet: its package creates the user
    os.chown(options.data_dir, owner.pw_uid, owner.pw_gid)
    options.data_dir.chmod(0o700)


def write(config: Config, options: PostfixOptions) -> list[Path]:
    """Write main.cf and master.cf (0644, like Postfix's own); returns their paths."""
    _directories(options)
    written = []
    for name, text in (("main.cf", main_cf(config, options)), ("master.cf", master_cf(options))):
        path = options.config_dir / name
        tmp = path.with_name(f".{name}.new")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)
        tmp.replace(path)
        written.append(path)
    return written
