"""The result of the last backup, kept where the panel and `courriel backup list` read it.

It lives in the data directory rather than on the backup disk, so that "the backup
disk is missing" can itself be recorded.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from courriel.config import get_config

FILE = "backup-status.json"


def status_path() -> Path:
    return get_config().data_dir / FILE


def write(ok: bool, message: str, **details: Any) -> dict[str, Any]:
    status = {
        "ok": ok,
        "message": message,
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        **details,
    }
    path = status_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=1, sort_keys=True), "utf-8")
    os.replace(tmp, path)
    return status


def read() -> dict[str, Any] | None:
    try:
        return json.loads(status_path().read_text("utf-8"))
    except (OSError, ValueError):
        return None
