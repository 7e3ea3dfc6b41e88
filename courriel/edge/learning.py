"""Teaching rspamd from what Dovecot's users do (edge mode), as Courriel's own IMAP
server does (`courriel.inbound.learning`): a message copied or moved into Junk is
spam, one moved out of Junk (anywhere but Trash) is ham. Dovecot's imapsieve plugin
(Debian's dovecot-sieve) runs a Sieve script on those COPY/MOVE commands, which pipes
the message to `courriel-learn`, a small standard-library script written here with
the controller's address; it never fails the user's command."""

from __future__ import annotations

from pathlib import Path

from courriel.config import Config
from courriel.inbound.settings import FilterSettings

LEARN_PROGRAM = "courriel-learn"
MAX_SIZE = 2 * 1024 * 1024  # as courriel.inbound.learning: rspamd reads the start

SPAM_SIEVE = f"""\
# Written by `courriel edge dovecot`: a message copied or moved into Junk is spam.
require ["vnd.dovecot.pipe", "copy", "imapsieve"];
pipe :copy "{LEARN_PROGRAM}" ["spam"];
"""

HAM_SIEVE = f"""\
# Written by `courriel edge dovecot`: a message moved out of Junk is ham, unless it
# goes to the Trash.
require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];
if environment :matches "imap.mailbox" "*" {{
  set "mailbox" "${{1}}";
}}
if string "${{mailbox}}" "Trash" {{
  stop;
}}
pipe :copy "{LEARN_PROGRAM}" ["ham"];
"""


def learn_program(url: str, password: str) -> str:
    return f'''#!/usr/bin/python3 -I
"""Written by `courriel edge dovecot`: Dovecot's imapsieve pipes a message here that
a user moved into Junk (spam) or out of it (ham); rspamd's controller learns it. Exits
0 whatever happens: learning must never fail the user's command."""
import sys
import urllib.request

URL = {url.rstrip("/")!r}
PASSWORD = {password!r}

kind = sys.argv[1] if len(sys.argv) > 1 else ""
if kind in ("spam", "ham"):
    content = sys.stdin.buffer.read({MAX_SIZE})
    request = urllib.request.Request(URL + "/learn" + kind, data=content, method="POST")
    if PASSWORD:
        request.add_header("Password", PASSWORD)
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except Exception as error:
        print("courriel-learn: rspamd did not learn a message as", kind, error, file=sys.stderr)
sys.exit(0)
'''


def controller(config: Config) -> FilterSettings | None:
    settings = FilterSettings.from_config(config)
    return settings if settings.controller_url else None


def imap_plugins(config: Config) -> str:
    return " imap_sieve" if controller(config) else ""


def plugin_settings(config: Config, config_dir: Path) -> list[str]:
    """Lines of dovecot.conf's `plugin` block (none when no controller is set)."""
    if not controller(config):
        return []
    return [
        "  # Users teach rspamd by moving mail in and out of Junk (courriel-learn).",
        "  sieve_plugins = sieve_imapsieve sieve_extprograms",
        "  sieve_global_extensions = +vnd.dovecot.pipe +vnd.dovecot.environment",
        f"  sieve_pipe_bin_dir = {config_dir / 'sieve-bin'}",
        "  imapsieve_mailbox1_name = Junk",
        "  imapsieve_mailbox1_causes = COPY",
        f"  imapsieve_mailbox1_before = file:{config_dir / 'sieve' / 'learn-spam.sieve'}",
        "  imapsieve_mailbox2_name = *",
        "  imapsieve_mailbox2_from = Junk",
        "  imapsieve_mailbox2_causes = COPY",
        f"  imapsieve_mailbox2_before = file:{config_dir / 'sieve' / 'learn-ham.sieve'}",
    ]


def files(config: Config) -> list[tuple[str, str, int]]:
    """(path under the configuration directory, text, mode) of the scripts; the
    program holds the controller's password: readable by the mail user's group only."""
    settings = controller(config)
    if settings is None:
        return []
    return [
        ("sieve/learn-spam.sieve", SPAM_SIEVE, 0o644),
        ("sieve/learn-ham.sieve", HAM_SIEVE, 0o644),
        (
            f"sieve-bin/{LEARN_PROGRAM}",
            learn_program(settings.controller_url, settings.password),
            0o750,
        ),
    ]
