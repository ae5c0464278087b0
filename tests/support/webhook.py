"""A JSON webhook on 127.0.0.1 that records what Apprise's ``json://`` delivers (alerts tests)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["TOKEN", "Receiver"]

TOKEN = "tok3nS3cr3tAbc123"  # the "secret" of every test URL: must never be printed


class Receiver:
    """A JSON webhook on 127.0.0.1: records (path, payload) of every POST (Apprise json://)."""

    def __init__(self) -> None:
        got: list[tuple[str, dict]] = []
        self.got = got

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length", 0))
                got.append((self.path, json.loads(self.rfile.read(n))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}/{TOKEN}"

    def at(self, path: str) -> list[dict]:
        return [p for (pth, p) in self.got if pth.startswith(f"/{path}/")]

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
