"""A connection's protocol object made from its listener's template is the one
aiosmtpd's own constructor makes, attribute by attribute, with nothing mutable
shared between two connections (see `SessionTemplate`)."""

from __future__ import annotations

import asyncio
import socket
import types
from pathlib import PurePath

import pytest
from aiosmtpd.smtp import SMTP

from courriel.delivery.smtp.protocol import ConnectionLimiter, CourrielSMTP, SessionTemplate


def _service(kind: str):
    from courriel.config import get_config
    from courriel.delivery.smtp.server import SmtpService
    from courriel.tls import ensure_certificate

    ensure_certificate(get_config())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    if kind == "cluster":  # the hosting servers' LMTP between themselves
        from courriel.cluster.lmtp import NodeListener, NodeLMTP

        node = NodeListener(get_config(), listener)
        node.protocol_class, node.policy = NodeLMTP, node.handler  # as SmtpService names them
        return node
    return SmtpService(get_config(), kind, kind, ConnectionLimiter(0), listener)  # type: ignore[arg-type]


# Shared by every connection of a listener in aiosmtpd too, and never changed by one.
SHARED = {"_auth_callback", "_handle_hooks", "_limiter", "_loop", "event_handler", "loop"}
SHARED |= {"tls_context"}
IMMUTABLE = (str, int, float, bool, type(None), PurePath, tuple, frozenset)


def _methods(table: dict, owner: object) -> dict:
    return {name: (bound.__func__, bound.__self__ is owner) for name, bound in table.items()}


def _auth(table: dict, owner: object) -> dict:
    return {
        name: (
            getattr(attr.method, "__func__", attr.method),
            getattr(attr.method, "__self__", None) is owner,
            attr.is_builtin,
        )
        for name, attr in table.items()
    }


# (aiosmtpd warns of AUTH without STARTTLS: the cluster's connections are TLS from the
# first byte.)
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("kind", ["smtp", "submission", "lmtp", "cluster"])
def test_a_session_from_the_template_is_what_aiosmtpd_makes(kind: str) -> None:
    service = _service(kind)

    async def make() -> tuple[CourrielSMTP, CourrielSMTP, CourrielSMTP]:
        made = service._protocol(), service._protocol()
        return *made, service.protocol_class(service.policy, **service.options)

    first, second, reference = asyncio.run(make())
    assert type(first) is type(reference)
    mine, theirs, other = vars(first), vars(reference), vars(second)
    assert set(mine) == set(theirs)
    for name in sorted(set(theirs) - SessionTemplate.OWN):
        assert mine[name] == theirs[name], name
        # Copied from the template: one object for all, so it must never change.
        assert name in SHARED or isinstance(mine[name], IMMUTABLE), f"{name} would be shared"
    assert _methods(first._smtp_methods, first) == _methods(reference._smtp_methods, reference)
    assert _auth(first._auth_methods, first) == _auth(reference._auth_methods, reference)
    assert first._client_connected_cb == first._cb_client_connected
    for name in SessionTemplate.OWN:
        assert type(mine[name]) is type(theirs[name]), name
        if mine[name] is not None:
            assert mine[name] is not other[name], f"{name} shared by two connections"
    assert first._strong_reader._limit == reference._strong_reader._limit
    assert first._stream_reader_wr() is first._strong_reader


def test_aiosmtpd_builds_its_tables_once_per_listener(monkeypatch) -> None:
    """The point of the template: a connection costs no `SMTP.__init__`."""
    service = _service("smtp")
    calls = []
    original = SMTP.__init__

    def counted(self, *args, **kwargs):
        calls.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(SMTP, "__init__", counted)

    async def connections() -> list[CourrielSMTP]:
        return [service._protocol() for _ in range(20)]

    sessions = asyncio.run(connections())
    assert len(calls) == 1
    assert all(isinstance(s, CourrielSMTP) for s in sessions)
    assert all(isinstance(s._smtp_methods["QUIT"], types.MethodType) for s in sessions)
    assert len({id(s._smtp_methods["QUIT"].__self__) for s in sessions}) == 20
