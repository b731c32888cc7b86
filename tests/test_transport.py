"""Credentials never cross the network readable: https only, certificates always verified."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET
from tests.conftest import run_cli


class _Counting(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        self.seen.append(self.path)
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server on loopback whose certificate no authority signed."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    seen: list[str] = []
    _Counting.seen = seen
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def config_for(api_url: str, **extra: object) -> dict[str, object]:
    return {
        "api_url": api_url,
        "api_key": DEFAULT_API_KEY,
        "api_secret": DEFAULT_API_SECRET,
        "start_date": "2025-03-01",
        "end_date": "2025-03-02",
        **extra,
    }


@pytest.mark.parametrize("method", ["hmac", "client_secret", "basic"])
def test_an_unverifiable_certificate_stops_the_run_before_anything_is_sent(
    tmp_path: Path, self_signed_server: tuple[str, list[str]], method: str
) -> None:
    url, seen = self_signed_server
    run = run_cli(tmp_path, config_for(url, auth_method=method, max_retries=3))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert "TLS certificate of https://127.0.0.1" in errors[0]
    assert "retry" not in run.stderr  # not transient: no retry
    assert seen == []  # no request reached the server
    assert DEFAULT_API_SECRET not in run.stderr


@pytest.mark.parametrize("host", ["api.calven.com", "10.1.2.3", "[fd00::1]", "calven.internal"])
def test_plain_http_to_another_host_is_refused_in_one_line(tmp_path: Path, host: str) -> None:
    run = run_cli(tmp_path, config_for(f"http://{host}:8080"))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert "Setting 'api_url' uses plain http://" in errors[0]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("url", ["http://localhost:1", "http://127.0.0.1:1", "http://[::1]:1"])
def test_plain_http_to_this_machine_is_allowed(tmp_path: Path, url: str) -> None:
    run = run_cli(tmp_path, config_for(url, max_retries=0))
    assert "Setting 'api_url'" not in run.stderr  # passes validation, then cannot connect
    assert "connection failed" in run.stderr
