"""Least privilege: started as root, `courriel serve` binds its ports (port 25 here)
and then every one of its processes runs as the service user; every command run as
root does the same, so no mail file or database file is ever root's."""

from __future__ import annotations

import os
import pwd
import random
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.platform import STRONG
from tests.fixtures.processes import Courriel, make_courriel, start_serve
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop it")


def service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("courriel")
    except KeyError:
        pytest.fail("the system user 'courriel' is missing: scripts/setup creates it")


@pytest.fixture
def courriel(fresh_database_url: str) -> Iterator[Courriel]:
    """A data directory the service user can reach (pytest's own are root-private)."""
    base = Path(tempfile.mkdtemp(prefix="courriel-privileges-"))
    base.chmod(0o755)
    command = make_courriel(base, fresh_database_url)
    command.env["COURRIEL_GENERAL_USER"] = "courriel"
    yield command
    shutil.rmtree(base, ignore_errors=True)


def uids(pid: int) -> set[int]:
    """Real, effective, saved and file-system uids and gids of a process."""
    found: set[int] = set()
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("Uid:", "Gid:")):
                found.update(int(value) for value in line.split()[1:])
    return found


def tree(root: int) -> list[int]:
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        children[int(entry)] = int(text.rsplit(")", 1)[1].split()[1])
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += [child for child, parent in children.items() if parent == pid]
    return found


def test_serve_binds_port_25_then_runs_everything_as_the_service_user(
    courriel: Courriel,
) -> None:
    user = service_user()
    # What an older version, running as root, left behind.
    courriel.data.mkdir(parents=True)
    (courriel.data / "left-by-root.txt").write_text("old")
    courriel("domain", "create", "monsite.be", "--plan", "recommended")
    courriel("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info")
    address = f"127.0.{random.randrange(1, 250)}.{random.randrange(2, 250)}"
    served = start_serve(courriel, {"COURRIEL_SMTP_BIND": address, "COURRIEL_SMTP_PORT": "25"})
    try:
        assert f"smtp: smtp://{address}:25/" in "".join(served.output)
        processes = tree(served.proc.pid)
        assert len(processes) >= 2, "the SMTP worker processes are there too"
        for pid in processes:
            assert uids(pid) == {user.pw_uid, user.pw_gid}, (pid, uids(pid))
        with smtplib.SMTP(address, 25, timeout=60) as client:
            client.sendmail("alice@example.org", ["info@monsite.be"], b"Subject: hi\r\n\r\nhi\r\n")
        maildir = courriel.data / "mail" / "monsite.be" / "homes" / "monsite0001" / "Maildir"
        [delivered] = wait_until(lambda: list((maildir / "new").iterdir()), "the message")
    finally:
        assert served.stop() == 0
    info = delivered.stat()
    assert (info.st_uid, info.st_gid) == (user.pw_uid, user.pw_gid)
    assert stat.S_IMODE(info.st_mode) == 0o600
    for path in [courriel.data, *courriel.data.rglob("*")]:
        assert path.lstat().st_uid == user.pw_uid, f"{path} is not the service user's"
        if path.is_dir() and not path.is_symlink():
            assert stat.S_IMODE(path.lstat().st_mode) == 0o700, path


def test_commands_run_as_root_write_only_the_service_users_files(courriel: Courriel) -> None:
    user = service_user()
    courriel("domain", "create", "monsite.be", "--plan", "recommended")
    courriel("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG)
    owners = {path.lstat().st_uid for path in [courriel.data, *courriel.data.rglob("*")]}
    assert owners == {user.pw_uid}


def test_a_data_directory_the_service_user_cannot_reach_is_a_clear_error(
    courriel: Courriel, tmp_path: Path
) -> None:
    """Said before any port is bound: a port another server holds (as another test's
    may, on port 25) does not hide what is wrong, and nothing is bound for nothing."""
    private = tmp_path / "inside-a-private-directory"  # pytest's tmp_path is 0700 root
    courriel.env["COURRIEL_DATA"] = str(private)
    address = f"127.0.{random.randrange(1, 250)}.{random.randrange(2, 250)}"
    courriel.env["COURRIEL_SMTP_BIND"] = address
    with socket.create_server((address, 25)):  # taken
        result = courriel("serve", ok=False)
    assert result.code == 78
    assert "cannot be used by user courriel" in result.err
    assert "COURRIEL_DATA" in result.err


def test_a_command_on_a_data_directory_the_service_user_cannot_reach_is_a_clear_error(
    courriel: Courriel, tmp_path: Path
) -> None:
    courriel.env["COURRIEL_DATA"] = str(tmp_path / "inside-a-private-directory")
    result = courriel("domain", "create", "monsite.be", "--plan", "recommended", ok=False)
    assert result.code == 78
    assert "cannot be used by user courriel" in result.err
    assert "Traceback" not in result.err


def test_a_missing_service_user_is_a_clear_error(courriel: Courriel) -> None:
    courriel.env["COURRIEL_GENERAL_USER"] = "no-such-user-here"
    result = courriel("domain", "list", ok=False)
    assert result.code == 78
    assert "'no-such-user-here' does not exist" in result.err and "useradd" in result.err


UNIT = Path(__file__).resolve().parent.parent / "contrib" / "systemd" / "courriel.service"


def unit_settings() -> dict[str, str]:
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), value.strip())
    return settings


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze")
def test_the_systemd_unit_is_valid_and_hardened(tmp_path: Path) -> None:
    unit = tmp_path / "courriel.service"
    courriel_command = shutil.which("courriel") or "/usr/local/bin/courriel"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/courriel", courriel_command))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr
    settings = unit_settings()
    for key, value in {
        "User": "courriel",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ReadWritePaths": "/var/lib/courriel",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "ExecReload": "/bin/kill -HUP $MAINPID",
    }.items():
        assert settings.get(key) == value, key


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux)")
def test_the_units_command_line_as_the_service_user_with_only_the_bind_capability(
    courriel: Courriel,
) -> None:
    """What systemd runs: the service user from the start, no capability but
    CAP_NET_BIND_SERVICE, no new privileges; it binds port 25 all the same."""
    user = service_user()
    courriel("domain", "create", "monsite.be", "--plan", "recommended")  # as root, dropping
    settings = unit_settings()
    capability = settings["AmbientCapabilities"].lower().removeprefix("cap_")
    address = f"127.0.{random.randrange(1, 250)}.{random.randrange(2, 250)}"
    courriel.env["COURRIEL_GENERAL_USER"] = settings["User"]  # that user already: no drop
    wrapper = [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        f"--inh-caps=-all,+{capability}",
        f"--ambient-caps=-all,+{capability}",
        f"--bounding-set=-all,+{capability}",
        "--no-new-privs",
    ]
    served = start_serve(
        courriel, {"COURRIEL_SMTP_BIND": address, "COURRIEL_SMTP_PORT": "25"}, wrapper=wrapper
    )
    try:
        assert f"smtp: smtp://{address}:25/" in "".join(served.output)
        for pid in tree(served.proc.pid):
            assert uids(pid) == {user.pw_uid, user.pw_gid}
            status = Path(f"/proc/{pid}/status").read_text()
            effective = int(re.search(r"CapEff:\s+(\w+)", status).group(1), 16)
            assert effective in (0, 1 << 10), hex(effective)  # CAP_NET_BIND_SERVICE alone
        with smtplib.SMTP(address, 25, timeout=60) as client:
            assert client.noop()[0] == 250
    finally:
        assert served.stop() == 0


def test_processes_started_after_the_drop_find_the_same_data_directory() -> None:
    """Root's default data directory is /var/lib/courriel, a user's ./courriel-data: an
    SMTP worker started by the service user must not look for another one."""
    code = (
        "import os; from courriel.config import load; from courriel.privileges import "
        "become, service_user\n"
        "config = load(); user = service_user(config); assert user is not None\n"
        "become(user, config)\n"
        "print(config.data_dir, load().data_dir)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COURRIEL_DATA", "COURRIEL_CONFIG")}
    env["COURRIEL_GENERAL_USER"] = "courriel"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/tmp"
    )
    assert result.returncode == 0, result.stderr
    root_saw, user_sees = result.stdout.split()
    assert root_saw == user_sees == "/var/lib/courriel"
