"""A raw IMAP connection over a loopback socket, for tests that must see every line the
server writes (untagged answers, unsolicited news) as it writes it."""

from __future__ import annotations

import re
import socket
import time

DEADLINE = 15.0


class Client:
    """A raw IMAP connection: commands and their answers, and the lines the server
    sends on its own between commands."""

    def __init__(self, port: int, login: str | None = None, password: str = "") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buffer = b""
        self.greeting = self.line()
        self.count = 0
        if login is not None:
            self.login(login, password)

    def login(self, login: str, password: str) -> None:
        self.sock.sendall(f"L LOGIN {login} {password}\r\n".encode())
        while not (line := self.line()).startswith("L "):
            pass
        assert line.startswith("L OK"), line

    def line(self, timeout: float = DEADLINE) -> str:
        """One line (TimeoutError when none comes within `timeout`), literals kept
        in the line they belong to."""
        end = time.monotonic() + timeout
        while True:
            match = re.match(rb"([^\n]*?)\{(\d+)\}\r\n", self.buffer)
            skip = len(match.group(0)) + int(match.group(2)) if match else 0
            newline = self.buffer.find(b"\n", skip)
            if newline >= 0:
                raw, self.buffer = self.buffer[: newline + 1], self.buffer[newline + 1 :]
                return raw.decode("utf-8", "replace").rstrip("\r\n")
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no line")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no line") from None
            if not data:
                raise ConnectionError("closed")
            self.buffer += data

    def command(self, text: str) -> list[str]:
        self.count += 1
        tag = f"t{self.count}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def ok(self, text: str) -> list[str]:
        lines = self.command(text)
        assert " OK " in lines[-1], lines
        return lines

    def unsolicited(self, pattern: str, deadline: float = DEADLINE) -> list[str]:
        """The lines the server sends on its own until one matches (polled with a
        deadline: the change is another process's or another session's)."""
        seen: list[str] = []
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                line = self.line(end - time.monotonic())
            except TimeoutError:
                break
            seen.append(line)
            if re.search(pattern, line):
                return seen
        raise AssertionError(f"no line matching {pattern!r} within {deadline}s; got {seen}")

    def quiet(self, seconds: float = 1.0) -> list[str]:
        """What the server sends on its own in `seconds` (expected: nothing)."""
        seen = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                seen.append(self.line(left))
            except TimeoutError:
                break
        return seen

    def close(self) -> None:
        self.sock.close()
