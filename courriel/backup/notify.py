"""Telling the provider admin that a backup failed.

One function, so that every failure (scheduled or by hand) is reported the same way.
Today it logs, records an audit entry and keeps the message in the status file shown
by the panel and `courriel backup list`; once the outbound mail queue exists it will
also send an e-mail to the provider admins.
"""

from __future__ import annotations

import logging
from typing import Any

from courriel.backup import status

log = logging.getLogger("courriel.backup")


def report_failure(message: str, **details: Any) -> None:
    log.error("backup failed: %s", message)
    status.write(False, message, **details)
    try:
        from courriel.bootstrap import setup_django

        setup_django()
        from courriel.accounts.permissions import Actor
        from courriel.audit.log import record

        record(Actor.system("backup"), "backup.failed", "backup", message=message)
    except Exception:  # the database may be what failed; the log and status remain
        log.warning("could not record the backup failure in the audit log", exc_info=True)
    try:
        from courriel.delivery.notices import report_to_provider

        report_to_provider(
            "Backup failed",
            f"The backup of the mail platform failed:\n\n{message}\n\n"
            "The earlier snapshots are untouched. `courriel backup list` shows the last "
            "result; `courriel backup run` tries again now.\n",
        )
    except Exception:  # the queue may be on the failing disk: the log and status remain
        log.warning("could not e-mail the backup failure to the provider", exc_info=True)
