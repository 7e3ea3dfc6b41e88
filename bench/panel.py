"""Panel and API speed with a big customer: one domain with 10,000 mailboxes and 2,000
aliases. Prints the median server time of the main pages and API lists (Django's
own request handling, in process: no network, no TLS), against the 100 ms target.

    python bench/panel.py [--mailboxes 10000] [--aliases 2000] [--runs 15]
    COURRIEL_DATABASE_URL=postgresql://... python bench/panel.py   # on PostgreSQL

There is no peer to compare with here (Virtualmin is not packaged for Debian), so the
ratio column compares with the target: below 1.00 is within it.

The big domain is filled with bulk inserts (plus a real Maildir per mailbox), not one
service call per mailbox: what is measured is reading pages, not creating accounts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pgdatabases import create_database, drop_databases

TARGET_MS = 100.0


def setup_environment(database_url: str) -> None:
    os.environ.setdefault("COURRIEL_DATA", tempfile.mkdtemp(prefix="courriel-bench-"))
    os.environ.setdefault("COURRIEL_GENERAL_HOSTNAME", "maximusconfessor.all2all.org")
    os.environ["COURRIEL_DATABASE_URL"] = database_url
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@contextlib.contextmanager
def own_database(admin_url: str) -> Iterator[str]:
    """On PostgreSQL, a new database for this run (dropped at the end), so that the
    benchmark can run again and never touches the database it was pointed at."""
    if not admin_url:
        yield ""
        return
    url = create_database(admin_url, f"courriel_panelbench_{os.getpid()}")
    try:
        yield url
    finally:
        from django.db import connections

        connections.close_all()
        drop_databases(admin_url, [url])


def fill(mailboxes: int, aliases: int) -> tuple[object, object, str]:
    """The big customer, its owner, and a provider admin's API token."""
    from django.contrib.auth.models import User
    from django.db import transaction

    from courriel.accounts import passwords
    from courriel.accounts.models import Address, Alias, Mailbox
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.domains import create_domain
    from courriel.accounts.services.plans import create_plan
    from courriel.api.tokens import create_token
    from courriel.audit.models import AuditEntry
    from courriel.bootstrap import initialize
    from courriel.config import get_config
    from courriel.mailstore.layout import create_maildir, relative_maildir

    initialize()
    provider = Actor.system("bench")
    create_plan(provider, "bench", mail_quota=None, max_mailboxes=None, max_servers=None)
    created = create_domain(provider, "grand.be", plan="bench", contact_email="it@grand.be")
    domain, owner = created.domain, created.owner
    password_hash = passwords.hash_password(passwords.generate_password())
    root = get_config().mail_root
    started = time.perf_counter()
    with transaction.atomic():
        boxes = Mailbox.objects.bulk_create(
            [
                Mailbox(
                    domain=domain,
                    login=f"grand{n:05d}",
                    real_name=f"Person {n}",
                    password_hash=password_hash,
                    quota=3 * 1024**3,
                    maildir=relative_maildir(domain.name, f"grand{n:05d}"),
                )
                for n in range(1, mailboxes + 1)
            ],
            batch_size=1000,
        )
        boxes = list(Mailbox.objects.filter(domain=domain).exclude(pk=owner.pk).order_by("pk"))
        Address.objects.bulk_create(
            [
                Address(domain=domain, local_part=box.login, kind=Address.PRIMARY, mailbox=box)
                for box in boxes
            ],
            batch_size=1000,
        )
        made = Alias.objects.bulk_create(
            [Alias(domain=domain, forward_to=[f"p{n}@example.org"]) for n in range(aliases)],
            batch_size=1000,
        )
        made = list(Alias.objects.filter(domain=domain).order_by("-pk")[:aliases])
        Address.objects.bulk_create(
            [
                Address(domain=domain, local_part=f"alias{n:05d}", kind=Address.ALIAS, alias=a)
                for n, a in enumerate(made)
            ],
            batch_size=1000,
        )
        Alias.mailboxes.through.objects.bulk_create(
            [
                Alias.mailboxes.through(alias_id=a.pk, mailbox_id=boxes[n % len(boxes)].pk)
                for n, a in enumerate(made)
            ],
            batch_size=1000,
        )
        AuditEntry.objects.bulk_create(
            [
                AuditEntry(
                    actor="grand",
                    role="owner",
                    action="mailbox.modify",
                    target=f"grand{n:05d}",
                    domain=domain.name,
                    details={},
                )
                for n in range(mailboxes)
            ],
            batch_size=1000,
        )
    for box in boxes:
        create_maildir(box.maildir_path(root))
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does soon after a bulk load
            cursor.execute("ANALYZE")
    print(
        f"filled grand.be: {mailboxes} mailboxes, {aliases} aliases, {mailboxes} audit "
        f"entries in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    admin = User.objects.create_superuser(username="benchadmin", email="", password=None)
    token = create_token(Actor("provider", "benchadmin", user_id=admin.pk), "bench").secret
    return owner, admin, token


def measure(
    client: object, path: str, runs: int, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of one page. CPU time is this process's
    own work: on a machine shared with other jobs it is the steadier figure."""
    times, cpu = [], []
    for n in range(runs + 2):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(path, secure=True, **(headers or {}))  # type: ignore[attr-defined]
        elapsed = (time.perf_counter() - started) * 1000
        used = (time.process_time() - cpu_started) * 1000
        assert response.status_code == 200, (path, response.status_code)
        if n >= 2:  # two warm-up requests
            times.append(elapsed)
            cpu.append(used)
    return statistics.median(times), statistics.median(cpu)


def count_disk_usage(owner: object) -> float:
    """What the background refresh costs (outside any request), and a fresh figure
    for the pages to show."""
    from courriel.web.usage import _refresh

    started = time.perf_counter()
    _refresh(owner.domain.pk)  # type: ignore[attr-defined]
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--aliases", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with own_database(os.environ.get("COURRIEL_DATABASE_URL", "")) as database_url:
        run(args, database_url)


def run(args: argparse.Namespace, database_url: str) -> None:
    setup_environment(database_url)
    from courriel.bootstrap import setup_django

    setup_django()
    from django.test import Client

    owner, admin, token = fill(args.mailboxes, args.aliases)
    clients = {"owner": Client(), "provider": Client(), "api": Client()}
    clients["owner"].force_login(owner, backend="courriel.accounts.auth.MailboxBackend")
    clients["provider"].force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    headers = {"api": {"HTTP_AUTHORIZATION": f"Bearer {token}"}}
    last_page = (args.mailboxes + 1 + 49) // 50
    last_offset = max(0, args.mailboxes - 50)
    domain, api = "/d/grand.be", "/api/v1/domains/grand.be"
    rows = [
        ("owner", "Virtual Server Information", f"{domain}/"),
        ("owner", "Virtual Server Details", f"{domain}/details/"),
        ("owner", "Mail users, page 1", f"{domain}/users/"),
        ("owner", f"Mail users, page {last_page}", f"{domain}/users/?page={last_page}"),
        ("owner", "Mail users, search", f"{domain}/users/?q=Person+42"),
        ("owner", "Add a user (login suggestion)", f"{domain}/users/new/"),
        ("owner", "Edit Mailbox", f"{domain}/user/grand{args.mailboxes // 2:05d}/"),
        ("owner", "Mail aliases, page 1", f"{domain}/aliases/"),
        ("owner", "Mail aliases, last page", f"{domain}/aliases/?page=999"),
        ("owner", "Edit alias", f"{domain}/alias/alias{args.aliases // 2:05d}/"),
        ("owner", "Change Passwords, pick a user", f"{domain}/passwords/"),
        ("owner", "Audit log", f"{domain}/audit/"),
        ("provider", "System Information", "/"),
        ("provider", "List Virtual Servers", "/provider/domains/"),
        ("api", "GET /domains", "/api/v1/domains"),
        ("api", "GET /domains/grand.be", api),
        ("api", "GET mailboxes (50)", f"{api}/mailboxes"),
        (
            "api",
            f"GET mailboxes (50, offset {last_offset})",
            f"{api}/mailboxes?offset={last_offset}",
        ),
        ("api", "GET mailboxes (50, with usage)", f"{api}/mailboxes?with_usage=true"),
        ("api", "GET aliases (50)", f"{api}/aliases"),
        ("api", "GET audit (50)", "/api/v1/audit?domain=grand.be"),
    ]
    from django.db import connection

    print(
        f"\nCourriel panel and API, {args.mailboxes} mailboxes and {args.aliases} aliases "
        f"in one domain, {connection.vendor}, median of {args.runs} requests"
    )
    counted = count_disk_usage(owner)
    print(
        f"(disk usage of the {args.mailboxes + 1} Maildirs counted in {counted:.0f} ms, in the "
        "background, at most once a minute: pages show the last figure)\n"
    )
    print("| who | page | median ms | CPU ms | target ms | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for who, name, path in rows:
        wall, cpu = measure(clients[who], path, args.runs, headers.get(who))
        ratio = wall / TARGET_MS
        print(f"| {who} | {name} | {wall:.1f} | {cpu:.1f} | {TARGET_MS:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
