"""A real ``protean observatory`` process, and screenshots of it with headless Chromium.

Chromium's ``--virtual-time-budget`` (wait until the page's scripts have fetched
and drawn their data) waits for every request to finish, and the Observatory's
live view (``GET /stream``, server-sent events) never does. :class:`NoLiveView`
sits between the two on loopback: it forwards every request to the Observatory
and answers ``/stream`` with ``204 No Content`` (the page then shows what its
REST calls return, which is what a screenshot can show anyway).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Chromium's flags for a screenshot that touches nothing outside loopback.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Observatory:
    """``protean observatory --domain <module>`` on 127.0.0.1, its log in ``log_path``."""

    def __init__(self, domain: str, env: Mapping[str, str], cwd: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(Path(sys.executable).with_name("protean")), "observatory", "--domain", domain,
                   "--host", "127.0.0.1", "--port", str(self.port)]
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"protean observatory exited {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"protean observatory did not answer within {timeout}s:\n{self.log()}")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return bytes(response.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class NoLiveView:
    """A loopback proxy to ``upstream`` that answers the live view (``/stream``) with 204."""

    def __init__(self, upstream: str) -> None:
        handler = type("Forward", (_Forward,), {"upstream": upstream})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Forward(BaseHTTPRequestHandler):
    upstream = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/stream"):
            self.send_response(204)
            self.end_headers()
            return
        try:
            with urllib.request.urlopen(self.upstream + self.path, timeout=30) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        self.send_response(status)
        for name in ("Content-Type", "Cache-Control"):
            if headers.get(name):
                self.send_header(name, headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        pass


def screenshot(url: str, path: Path, wait_ms: int = 8000, size: str = "1400,900") -> Path:
    """A PNG of ``url`` after its scripts ran for ``wait_ms`` of virtual time (headless Chromium)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={path}",
                   f"--window-size={size}", f"--virtual-time-budget={wait_ms}", url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return path
