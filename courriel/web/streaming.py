"""Sending a long body (a mailbox download) a chunk at a time under `courriel serve`.

Django's ASGI handler cannot stream a plain iterator: it reads the whole of it into a
list first (with a warning), which for a mailbox of several gigabytes means holding
it all in memory. Under ASGI the chunks are therefore pulled one at a time, each in a
worker thread (the generators read and compress files), and each is sent before the
next is made: uvicorn waits for the client to take the data (TCP flow control), so
memory stays at about one chunk per download whatever the size, and the event loop,
which also serves SMTP, IMAP and POP3, never waits on the disk. Outside ASGI (the
test client, a WSGI server) the iterator is handed over as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header

if TYPE_CHECKING:
    from courriel.backup.download import Download


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


async def _pulled_in_threads(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Not the thread of Django's synchronous views (thread_sensitive=False): a long
    # download must not hold up every other page.
    pull = sync_to_async(_next, thread_sensitive=False)
    try:
        while (chunk := await pull(chunks)) is not None:
            if chunk:  # compression may yield nothing for a while
                yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            # A client that went away mid-chunk leaves the generator running in its
            # thread; it is then closed by the garbage collector when that returns.
            with contextlib.suppress(ValueError):
                close()


def pulled_in_threads(
    request: HttpRequest, chunks: Iterator[bytes]
) -> Iterator[bytes] | AsyncIterator[bytes]:
    """What StreamingHttpResponse should be given for `chunks` under this server."""
    return _pulled_in_threads(chunks) if isinstance(request, ASGIRequest) else chunks


def attachment(request: HttpRequest, download: Download) -> StreamingHttpResponse:
    """A mailbox download as a file to save, never cached (it is someone's mail)."""
    body = pulled_in_threads(request, download.chunks)
    response = StreamingHttpResponse(body, content_type=download.content_type)
    response["Content-Disposition"] = content_disposition_header(True, download.filename)
    add_never_cache_headers(response)
    return response


def streamed_page(request: HttpRequest, chunks: Iterator[bytes]) -> StreamingHttpResponse:
    """A page sent while it is made (the progress of a long batch import), never
    cached (it may show generated passwords)."""
    body = _pulled_in_threads(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(body, content_type="text/html; charset=utf-8")
    add_never_cache_headers(response)
    return response
