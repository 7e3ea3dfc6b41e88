"""`courriel serve`: every service of the platform in one asyncio process.

Each capability package offers a `services(config)` factory (listed in FACTORIES);
every service binds its sockets first (so a port already in use is reported clearly
before anything starts), then runs until SIGTERM or SIGINT, then stops cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from courriel.config import Config
from courriel.errors import ConfigError
from courriel.mailstore import spares

log = logging.getLogger("courriel.serve")

# "module:function" returning the services of one capability; order is start order.
FACTORIES = [
    "courriel.cluster.services:services",  # first: registers this node, or stops here
    "courriel.web.services:services",
    "courriel.greylist.service:services",  # before the SMTP server, which calls it
    "courriel.outbound.runner:services",
    "courriel.delivery.smtp.server:services",
    "courriel.edge.socketmap:services",
    "courriel.acme.service:services",
    "courriel.access.services:services",
    "courriel.backup.scheduler:services",
    "courriel.stats.service:services",
    "courriel.accounts.reports:services",
]


class Service(Protocol):
    name: str
    listening: list[str]  # human lines such as "web: https://0.0.0.0:10000/"

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_prebound: dict[tuple[str, int], socket.socket] = {}


def prebind(config: Config) -> None:
    """Bind every listener of `courriel serve` now, while still root (ports below
    1024), including one mail-in socket (port 25, or LMTP in edge mode) per extra SMTP
    worker process; `bind()` then hands these out instead of binding."""
    from courriel.config import LISTENERS
    from courriel.delivery.smtp.workers import mail_in_section, worker_count

    shared = mail_in_section(config)
    for section in LISTENERS:
        if not getattr(config, section).enabled:
            continue
        processes = worker_count(config) if section == shared else 1
        for index in range(processes):
            _prebound[(section, index)] = _listen(
                config, section, shared=processes > 1, join=index > 0
            )


def bind(
    config: Config, section: str, *, shared: bool = False, join: bool = False, index: int = 0
) -> socket.socket:
    """The listening socket of `[section]` (the `index`-th of a port shared by several
    processes): the one `prebind` made, or a new one."""
    sock = _prebound.pop((section, index), None)
    return sock if sock is not None else _listen(config, section, shared=shared, join=join)


def _listen(config: Config, section: str, *, shared: bool, join: bool) -> socket.socket:
    """Listen on `[section] bind`:`port`, with a message that says what to change.

    `shared`: several processes listen on the port and the kernel spreads the
    connections between them (SO_REUSEPORT). Such a port would also be shared,
    silently, with any other program of the same user that set SO_REUSEPORT on it, so
    the first socket checks that nobody holds the port yet; the ones that `join` it
    afterwards do not.
    """
    values = getattr(config, section)
    host, port = values.bind, values.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def listener(reuse_port: bool) -> socket.socket:
        # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # that say they are TCP, and a multi-line reply written line by line would
        # otherwise wait for the client's delayed ACK (40 ms) after its first line.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            var = f"COURRIEL_{section.upper()}_PORT"
            raise ConfigError(
                f"Cannot listen on {host}:{port} for {section} ({error.strerror}). "
                f"Is another server using it? Set [{section}] port or {var}, "
                f"or [{section}] enabled = false."
            ) from None
        return sock

    if shared and not join:
        listener(reuse_port=False).close()  # nobody else listens there
    sock = listener(reuse_port=shared)
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def close_server(server: asyncio.AbstractServer | None, timeout: float = 5) -> None:
    """Stop listening and give the open connections `timeout` seconds to end."""
    if server is not None:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout)


def build_services(config: Config) -> list[Service]:
    services: list[Service] = []
    for target in FACTORIES:
        module_name, function = target.split(":")
        factory: Callable[[Config], list[Service]] = getattr(
            importlib.import_module(module_name), function
        )
        services.extend(factory(config))
    return services


RESTART_ONLY = {
    ("general", "data_dir"),
    ("general", "user"),
    ("general", "mode"),
    ("general", "server"),
    ("general", "event_loop"),
    ("database", "url"),
    ("mail", "root"),
    ("smtp", "workers"),
}


def _reload(services: list[Service]) -> None:
    """SIGHUP: read the configuration file and the certificates again, without
    dropping a connection. Listeners, the data directory, the database, the service
    user and the mode stay as they are until a restart (the log says which)."""
    from courriel.config import LISTENERS, get_config, load, reload
    from courriel.tls import reload_certificates

    before = get_config()
    try:
        after = load()
        reload_certificates(after)
    except ConfigError as error:
        log.error("SIGHUP: configuration not reloaded, the running one stays: %s", error)
        return
    reload(after)
    fixed = set(RESTART_ONLY) | {(name, key) for name in LISTENERS for key in after.sections[name]}
    pending = sorted(
        f"[{name}] {key}"
        for name, key in fixed
        if before.sections[name].get(key) != after.sections[name].get(key)
    )
    for service in services:
        hook = getattr(service, "reload", None)
        if hook is not None:
            hook()
    log.warning(
        "SIGHUP: configuration and TLS certificates read again%s",
        f"; a restart is needed for {', '.join(pending)}" if pending else "",
    )


def _wake(services: list[Service]) -> None:
    """SIGUSR1 (`courriel queue retry`): services with pending work look at it now."""
    for service in services:
        wake = getattr(service, "wake_up", None)
        if wake is not None:
            wake()


async def serve(
    config: Config, services: list[Service] | None = None, *, main: bool = True
) -> None:
    """Run `services` (all of them by default) until SIGTERM/SIGINT. The main process
    writes the pid file that `courriel queue retry` and `courriel status` use."""
    services = build_services(config) if services is None else services
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_on(signum: int) -> None:
        log.warning("%s received: stopping (pid %d)", signal.Signals(signum).name, os.getpid())
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_on, signum)
    loop.add_signal_handler(signal.SIGUSR1, _wake, services)
    loop.add_signal_handler(signal.SIGHUP, _reload, services)
    pid_file = config.data_dir / "courriel.pid"
    if main:
        pid_file.write_text(f"{os.getpid()}\n")
    started: list[Service] = []
    spares.start(config.mail_root)
    try:
        for service in services:
            await service.start()
            started.append(service)
            for line in service.listening:
                print(line, flush=True)
        settle_heap()
        if main:
            print("Courriel is running. Stop with Ctrl-C or SIGTERM.", flush=True)
        await stop.wait()
    finally:
        for service in reversed(started):
            try:
                await service.stop()
            except Exception:  # keep stopping the others
                log.exception("error while stopping %s", service.name)
        spares.stop()
        if main:
            with contextlib.suppress(OSError):
                pid_file.unlink()


# Young objects collected every 10,000 allocations of containers (CPython's default is 700):
# a command over a 50,000-message folder makes a few hundred thousand short-lived tuples, and
# at the default pace each such command also paid for a full collection of the heap (70 ms
# of a 140 ms SORT in a profile). Cycles still get collected, a little later.
COLLECT_YOUNG_EVERY = 10_000


def settle_heap() -> None:
    """Once the services have started: what is alive now (modules, Django, the
    configuration) lives as long as the process, so the cyclic collector stops walking
    it (`gc.freeze`), and collects the young generation less often."""
    gc.collect()
    gc.freeze()
    _first, middle, oldest = gc.get_threshold()
    gc.set_threshold(COLLECT_YOUNG_EVERY, middle, oldest)


# glibc's mallopt() parameter for the most malloc arenas the process may have.
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """At most MALLOC_ARENAS malloc arenas in a server process, before its threads start.

    glibc gives each thread that calls malloc while another holds the lock an arena of
    its own (up to 8 per core), and memory freed in an arena is reused by that arena
    only. Our threads (the thread pool of database and delivery work, the journal's,
    the greylist's) mostly take turns under the GIL anyway, so their arenas mostly hold
    free memory that nobody else may use: with every listener on, 4-6 MiB per
    process after a few thousand messages. Nothing is lost by sharing two arenas.
    An operator's MALLOC_ARENA_MAX in the environment (read by glibc itself) wins; on
    another C library mallopt is missing or refuses, and nothing changes."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def run_loop(config: Config, main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on the event loop `[general] event_loop` names (uvloop by default:
    the mail protocols spend much of their time in the loop itself)."""
    limit_malloc_arenas()
    choice = config.general.get("event_loop", "uvloop")
    if choice not in {"uvloop", "asyncio"}:
        raise ConfigError(f'[general] event_loop must be "uvloop" or "asyncio", not {choice!r}')
    factory = None
    if choice == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def run(config: Config) -> None:
    run_loop(config, serve(config))
