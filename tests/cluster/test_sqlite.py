"""SQLite is one machine's database (issue 15): a platform on it runs as one hosting
server, and a second one started on it is refused, saying what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.processes import make_courriel, start_serve


def test_a_second_hosting_server_on_sqlite_is_refused(tmp_path: Path) -> None:
    courriel = make_courriel(tmp_path, "")  # the embedded SQLite database
    first = courriel("server", "list", "--json").json[0]["name"]
    courriel("server", "add", "moses", "moses.all2all.test", "--ip", "127.0.0.13")
    served = start_serve(courriel, {"COURRIEL_GENERAL_SERVER": first})
    try:
        with pytest.raises(AssertionError) as refused:
            start_serve(courriel, {"COURRIEL_GENERAL_SERVER": "moses"}, timeout=60)
        text = str(refused.value)
        assert "SQLite" in text and "PostgreSQL" in text and first in text, text
        assert "Traceback" not in text
    finally:
        served.stop()
    # The first server goes on as the whole platform's.
    assert courriel("status").code == 0
