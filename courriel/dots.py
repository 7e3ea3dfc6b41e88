"""The dot of line-based mail protocols (RFC 5321 4.5.2, RFC 1939 3): a line that
begins with "." gets a second one, and "." alone on a line ends the data. One rule for
what POP3 sends and what one hosting server hands to another over LMTP."""

from __future__ import annotations


def dot_stuff(data: bytes) -> bytes:
    """`data` (CRLF lines) stuffed and terminated: ready to follow DATA or +OK."""
    stuffed = data.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"
