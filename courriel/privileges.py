"""Least privilege: started as root, Courriel runs as its own system user.

The SMTP, IMAP and POP3 parsers and the web panel face the Internet; none of them
needs root. Root is needed for two things only, done first: binding ports below 1024
(`courriel.runtime.prebind`) and giving the data directory to the service user. Then
the process becomes that user for good (group list, gid, uid), before any service,
database connection or mail file is opened, and every process it starts (SMTP
workers, backup workers) inherits that.

Started directly as the service user with CAP_NET_BIND_SERVICE (a systemd unit's
`AmbientCapabilities=`), nothing here applies and everything works the same.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from courriel.config import Config
from courriel.errors import ConfigError

log = logging.getLogger("courriel.serve")


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int
    home: str


def service_user(config: Config) -> ServiceUser | None:
    """The user to become, or None: not root, or `[general] user` empty or root."""
    name = str(config.general.user).strip()
    if os.geteuid() != 0 or not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"[general] user {name!r} does not exist. Create it "
            f"(useradd --system --home-dir /var/lib/courriel --shell /usr/sbin/nologin "
            f'{name}; scripts/setup does this), or set [general] user = "" to run as '
            "root (not recommended)."
        ) from None
    if entry.pw_uid == 0:
        return None
    return ServiceUser(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def _owned_directories(config: Config) -> list[Path]:
    """The directories that are ours to give to the service user."""
    roots = [config.data_dir, config.mail_root]
    return [root for index, root in enumerate(roots) if root not in roots[:index]]


def _give(path: Path, user: ServiceUser) -> int:
    """chown -R without following symbolic links; how many entries changed owner."""
    changed = 0
    for directory, subdirectories, files in os.walk(path):
        for name in [*subdirectories, *files]:
            entry = os.path.join(directory, name)
            info = os.lstat(entry)
            if (info.st_uid, info.st_gid) != (user.uid, user.gid):
                os.lchown(entry, user.uid, user.gid)
                changed += 1
    info = os.lstat(path)
    if (info.st_uid, info.st_gid) != (user.uid, user.gid):
        os.lchown(path, user.uid, user.gid)
        changed += 1
    return changed


def prepare_directories(config: Config, user: ServiceUser) -> None:
    """As root: create the data directory (0700) and make everything in it the service
    user's. Files that an older version wrote as root are handed over once."""
    for root in _owned_directories(config):
        if not root.exists():
            root.mkdir(mode=0o700, parents=True)
            os.chown(root, user.uid, user.gid)
            continue
        root.chmod(0o700)  # whatever lies below is nobody else's business
        info = os.stat(root)
        if (info.st_uid, info.st_gid) != (user.uid, user.gid) or _has_foreign_entries(root, user):
            changed = _give(root, user)
            if changed:
                log.warning("%s: %d entries given to user %s", root, changed, user.name)


def _has_foreign_entries(root: Path, user: ServiceUser) -> bool:
    """A quick look at the top level (a root-run command of an older version leaves
    its files there: the database, the TLS key, the queue)."""
    try:
        with os.scandir(root) as entries:
            return any(entry.stat(follow_symlinks=False).st_uid != user.uid for entry in entries)
    except OSError:
        return True


def become(user: ServiceUser, config: Config) -> None:
    """Drop root for good: supplementary groups, gid, then uid (order matters). The
    processes started afterwards (SMTP and backup workers) are not root: they must
    find the same data directory and configuration file as root did."""
    from courriel.config import ENV_PREFIX

    os.environ.setdefault(f"{ENV_PREFIX}DATA", str(config.data_dir))
    if config.path is not None:
        os.environ.setdefault(f"{ENV_PREFIX}CONFIG", str(config.path))
    os.setgroups(_groups(user))
    os.setgid(user.gid)
    os.setuid(user.uid)
    os.environ["HOME"] = user.home
    os.environ["USER"] = os.environ["LOGNAME"] = user.name


def _groups(user: ServiceUser) -> list[int]:
    groups = {user.gid}
    for group in grp.getgrall():
        if user.name in group.gr_mem:
            groups.add(group.gr_gid)
    return sorted(groups)


def check_reachable(config: Config, user: ServiceUser) -> None:
    """Before the drop (and before any port is bound): the data directory must be
    usable by the service user, with advice if it is not (a directory inside root's
    home cannot be reached by another user)."""
    roots = [str(root) for root in _owned_directories(config)]
    missing = _unreachable_as(user, roots, os.R_OK | os.W_OK | os.X_OK)
    if missing:
        raise ConfigError(
            f"The data directory {missing[0]} cannot be used by user {user.name} (is one of "
            "its parent directories private, like /root?). Set COURRIEL_DATA or "
            "[general] data_dir to a directory such as /var/lib/courriel."
        )


def _code_paths() -> list[str]:
    """What the service user must be able to read after the drop: the interpreter,
    the standard library, site-packages and this package (imported lazily, later)."""
    import sys

    import courriel

    paths = [sys.executable, os.path.realpath(sys.executable)]
    paths += [entry for entry in sys.path if entry and os.path.isdir(entry)]
    paths.append(os.path.dirname(courriel.__file__))
    return list(dict.fromkeys(paths))


def unreachable_code(user: ServiceUser) -> list[str]:
    """The code paths the service user could not read."""
    return _unreachable_as(user, _code_paths(), os.R_OK | os.X_OK)


def _unreachable_as(user: ServiceUser, paths: list[str], mode: int) -> list[str]:
    """The paths the service user could not use in `mode` (checked by a child process
    that becomes the user, so every permission rule of the system applies)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, look, report, leave at once
        os.close(read)
        try:
            os.setgroups(_groups(user))
            os.setgid(user.gid)
            os.setuid(user.uid)
            missing = [p for p in paths if not os.access(p, mode)]
            os.write(write, "\0".join(missing).encode("utf-8", "surrogateescape"))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode("utf-8", "surrogateescape")
    os.waitpid(pid, 0)
    return [path for path in answer.split("\0") if path]


def check_code_reachable(user: ServiceUser) -> None:
    missing = unreachable_code(user)
    if missing:
        raise ConfigError(
            f"User {user.name} cannot read the program it is to run ({missing[0]}). "
            "Install Courriel where every user can read it (a virtual environment in "
            "/opt/courriel, or the system's Python), or let other users pass through the "
            f"directory that hides it (chmod o+x on {_first_private_parent(missing[0])}), "
            'or set [general] user = "" to run as root (not recommended).'
        )


def _first_private_parent(path: str) -> str:
    current = Path(path)
    for parent in [*reversed(current.parents), current]:
        if not os.stat(parent).st_mode & 0o001:
            return str(parent)
    return path


def prepare_for(user: ServiceUser, config: Config) -> None:
    """As root, before any port is bound and before the drop: the service user can
    run the program, and the data directories exist, are theirs and usable by them."""
    check_code_reachable(user)
    prepare_directories(config, user)
    check_reachable(config, user)


def drop_for_command(config: Config) -> None:
    """Every command that works on the data run as root: become the service user first
    (so no file it writes is root's, which the server could not open later)."""
    user = service_user(config)
    if user is None:
        return
    prepare_for(user, config)
    become(user, config)
