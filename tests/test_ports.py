"""The suite's own loopback ports: two servers started side by side never draw the same one.

CI once failed because Dovecot's imap-login found its port taken: each pick was random
over one range shared by both test workers and by every pick of a fixture.
"""

from __future__ import annotations

import socket

import pytest

from tests.fixtures import net


def test_a_fixture_picking_many_ports_gets_distinct_ones_none_in_use() -> None:
    ports = [net.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    for port in ports[:20]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free when handed out


def test_a_port_in_use_is_skipped() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", net.free_port()))
        held.listen()
        taken = held.getsockname()[1]
        assert taken not in [net.free_port() for _ in range(len(net.worker_ports()))]


def test_workers_draw_from_disjoint_shares_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    shares = []
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        shares.append(set(net.worker_ports()))
    assert not shares[0] & shares[1] and not shares[1] & shares[2] and not shares[0] & shares[2]
    assert all(share and max(share) < 32768 for share in shares)
