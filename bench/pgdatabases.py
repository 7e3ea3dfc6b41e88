"""Throw-away PostgreSQL databases for benchmark runs, so that a benchmark pointed at
`COURRIEL_DATABASE_URL` can run again and never touches that database itself."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse


def create_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url`; returns its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(urlparse(admin_url)._replace(path=f"/{name}"))


def drop_databases(admin_url: str, urls: list[str]) -> None:
    """Drop the databases made by create_database (even with sessions still open)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for url in urls:
            conn.execute(f'DROP DATABASE IF EXISTS "{urlparse(url).path[1:]}" WITH (FORCE)')
