"""Helpers for tests and benchmarks of code that reads cubes (as ``xarray.testing`` serves xarray's users).

:func:`serve_folder` serves a local folder over HTTP on loopback, honouring single byte ranges as
object stores and CDNs do, and records every request, so a test or a benchmark can count what
reading a remote cube costs without a cloud account.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Request:
    """One request the server answered: its method, URL path, the bytes of its body and its status (404: no such
    file)."""

    method: str
    path: str
    nbytes: int
    status: int = 200


@dataclass
class ServedFolder:
    """A folder being served: ``url`` of the folder (``http://127.0.0.1:PORT``) and every request so far."""

    url: str
    requests: list[Request] = field(default_factory=list)

    @property
    def gets(self) -> list[Request]:
        """The GET requests (HEAD requests only ask for sizes)."""
        return [r for r in self.requests if r.method == "GET"]


class _RangeHandler(SimpleHTTPRequestHandler):
    """Static files; a ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` request gets 206 and those bytes."""

    served: ServedFolder

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.served.requests.append(Request(self.command, self.path, 0, 404))
            self.send_error(404)
            return
        data = Path(path).read_bytes()
        header, content_range = self.headers.get("Range"), None
        if header:
            start, end = header.removeprefix("bytes=").split("-")
            first = max(0, len(data) - int(end)) if start == "" else int(start)
            last = len(data) - 1 if start == "" or not end else min(int(end), len(data) - 1)
            status, content_range = 206, f"bytes {first}-{last}/{len(data)}"
            data = data[first:last + 1]
        else:
            status = 200
        # recorded before a byte is sent: a client that has its answer finds its request counted
        self.served.requests.append(Request(self.command, self.path, len(data) if body else 0, status))
        self.send_response(status)
        if content_range:
            self.send_header("Content-Range", content_range)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


@contextlib.contextmanager
def serve_folder(folder: str | Path) -> Iterator[ServedFolder]:
    """Serve ``folder`` at ``http://127.0.0.1:PORT`` (a free port) while the block runs; yields the
    :class:`ServedFolder` whose ``requests`` grow as the server answers."""
    served = ServedFolder("")
    handler = type("Handler", (_RangeHandler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
