"""`courriel serve` takes the daily backup at [backup] time and reports failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.backup.mail import customer
from tests.fixtures.processes import Courriel, start_serve
from tests.fixtures.sink import Sink
from tests.fixtures.waiting import PATIENCE, wait_until

# The scheduler takes a time that has already passed today as tomorrow's: leave
# `courriel serve` room to start on a loaded machine before the minute comes.
START_ROOM = 10


def seconds_from_now(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%H:%M:%S")


def wait_for_status(data: Path) -> dict[str, object]:
    path = data / "backup-status.json"
    wait_until(path.exists, "the scheduled backup", timeout=START_ROOM + PATIENCE)
    return json.loads(path.read_text())


def test_serve_takes_the_backup_at_the_configured_time(courriel: Courriel) -> None:
    customer(courriel)
    at = seconds_from_now(START_ROOM)
    served = start_serve(
        courriel, {"COURRIEL_GENERAL_TIME_ZONE": "UTC", "COURRIEL_BACKUP_TIME": at}
    )
    try:
        assert f"backup: every day at {at} (UTC)" in "".join(served.output)
        assert not (courriel.data / "backup-status.json").exists()  # not before its time
        status = wait_for_status(courriel.data)
        assert status["ok"] is True and status["trigger"] == "schedule"
        assert served.proc.poll() is None
    finally:
        assert served.stop() == 0
    listed = courriel("backup", "list", "--json").json
    assert [s["name"] for s in listed["snapshots"]] == ["daily.0"]
    assert "OK" in courriel("backup", "verify").out


def test_serve_reports_a_failed_backup_and_keeps_running(
    courriel: Courriel, tmp_path: Path
) -> None:
    customer(courriel)
    provider = Sink().start()  # the provider's own mail server
    served = start_serve(
        courriel,
        {
            "COURRIEL_GENERAL_TIME_ZONE": "UTC",
            "COURRIEL_BACKUP_TIME": seconds_from_now(START_ROOM),
            "COURRIEL_BACKUP_DIRECTORY": str(tmp_path / "unmounted-disk"),
            "COURRIEL_GENERAL_PROVIDER_EMAIL": "ops@provider.example",
            "COURRIEL_QUEUE_TRANSPORT": f"provider.example=127.0.0.1:{provider.port}",
            "COURRIEL_QUEUE_RELAY_SECURITY": "none",
        },
    )
    try:
        status = wait_for_status(courriel.data)
        assert status["ok"] is False and "is the backup disk mounted?" in str(status["message"])
        wait_until(
            lambda: "backup failed: The backup directory" in "".join(served.output),
            "the failure in the server's log",
        )
        assert served.proc.poll() is None
        [report] = provider.wait_for(1, where=lambda m: m.recipients == ["ops@provider.example"])
        assert report.header("Subject") == "Backup failed"
        assert b"is the backup disk mounted?" in report.content
    finally:
        assert served.stop() == 0
        provider.stop()
    failed = [e for e in courriel("audit", "--json").json if e["action"] == "backup.failed"]
    assert failed and "is the backup disk mounted?" in failed[0]["details"]["message"]
