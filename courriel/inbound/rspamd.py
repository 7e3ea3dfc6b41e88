"""A small client of rspamd's HTTP API: `/checkv2` on the normal worker, `/learnspam`
and `/learnham` on the controller (https://rspamd.com/doc/developers/protocol.html).

A plain HTTP/1.1 request over an asyncio stream: the API is one POST with the message
as the body and the envelope in headers, and one JSON answer; no client library is
needed, and the SMTP server's event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

log = logging.getLogger("courriel.inbound")
MAX_ANSWER = 4 * 1024 * 1024


class RspamdUnavailable(Exception):
    """rspamd could not be reached or gave no usable answer."""


@dataclass(frozen=True)
class Scan:
    action: str  # "no action", "greylist", "add header", "rewrite subject", "soft reject", "reject"
    score: float
    required: float  # the score of rspamd's "add header" action
    symbols: list[str] = field(default_factory=list)
    message: str = ""  # rspamd's text for the sender (e.g. a greylisting or reject reason)

    @property
    def status_line(self) -> str:
        names = ",".join(sorted(self.symbols)[:40])
        return (
            f"score={self.score:.2f} required={self.required:.2f} "
            f'action="{self.action}" tests={names}'
        )


async def _post(
    url: str, path: str, body: bytes, headers: list[tuple[str, str]], timeout: float
) -> tuple[int, bytes]:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    host = parts.hostname or ""
    context = ssl.create_default_context() if secure else None
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            head = [
                f"POST {parts.path.rstrip('/')}{path} HTTP/1.1",
                f"Host: {parts.netloc}",
                "Connection: close",
                f"Content-Length: {len(body)}",
            ]
            head += [f"{k}: {v}" for k, v in headers]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "replace") + body)
            await writer.drain()
            answer = await reader.read(MAX_ANSWER)
            while True:  # "Connection: close": read to the end
                more = await reader.read(MAX_ANSWER)
                if not more or len(answer) > MAX_ANSWER:
                    break
                answer += more
    except (OSError, TimeoutError, ssl.SSLError) as error:
        raise RspamdUnavailable(f"{url}{path}: {error or type(error).__name__}") from None
    finally:
        if writer is not None:
            writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise RspamdUnavailable(f"{url}{path}: not an HTTP answer") from None
    headers_raw, _, payload = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers_raw.lower():
        payload = _unchunk(payload)
    return status, payload


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def _header(value: str) -> str:
    return "".join(c for c in value if c.isprintable() and c not in "\r\n")[:500]


async def check(
    url: str,
    content: bytes,
    *,
    timeout: float,
    client_ip: str,
    helo: str,
    sender: str,
    recipients: list[str],
    queue_id: str,
    hostname: str = "",
) -> Scan:
    headers = [
        ("IP", _header(client_ip)),
        ("From", _header(sender)),
        ("Queue-Id", _header(queue_id)),
        ("MTA-Name", _header(hostname)),
        ("Content-Type", "message/rfc822"),
    ]
    if helo:
        headers.append(("Helo", _header(helo)))
    headers += [("Rcpt", _header(r)) for r in recipients]  # one header per recipient
    status, payload = await _post(url, "/checkv2", content, headers, timeout)
    if status != 200:
        raise RspamdUnavailable(f"rspamd answered HTTP {status}: {payload[:200]!r}")
    try:
        answer = json.loads(payload)
        action = str(answer["action"])
        score = float(answer.get("score", 0.0))
        required = float(answer.get("required_score", 0.0))
    except (ValueError, KeyError, TypeError) as error:
        raise RspamdUnavailable(f"unreadable rspamd answer: {error}") from None
    symbols = list((answer.get("symbols") or {}).keys())
    text = ""
    messages = answer.get("messages") or {}
    if isinstance(messages, dict):
        text = str(messages.get("smtp_message", ""))
    return Scan(action, score, required, symbols, text)


async def learn(url: str, content: bytes, *, spam: bool, password: str, timeout: float) -> str:
    """Teach rspamd's Bayes classifier; returns what happened (for the log)."""
    headers = [("Content-Type", "message/rfc822")]
    if password:
        headers.append(("Password", _header(password)))
    path = "/learnspam" if spam else "/learnham"
    status, payload = await _post(url, path, content, headers, timeout)
    if status == 204:  # "all learn conditions denied": Bayes already agrees
        return "already known"
    if status != 200:
        raise RspamdUnavailable(f"rspamd {path} answered HTTP {status}: {payload[:200]!r}")
    return "learnt"
