"""``nsml-hpc serve`` over plain HTTP (the browser itself is driven in
tests/slurm/test_serve_browser.py): the token on every path, the cookie after the first
visit, the printed ssh line, a short token refused, and the addresses of the page under a
reverse proxy's prefix (Open OnDemand)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.cli import main
from nsml_hpc.cli.serve_command import tunnel_line

TOKEN = "0123456789abcdef-serve-test"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.build_opener(Keep).open(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def served(nsml_env: Path) -> Iterator[tuple[str, list[str]]]:
    port = _port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nsml_hpc",
            "serve",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--url-prefix",
            "/rnode/node7/8022/",
            "--login-host",
            "login.example.org",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert server.stdout is not None
    banner = [server.stdout.readline().rstrip("\n") for _ in range(3)]
    yield f"http://127.0.0.1:{port}", banner
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=20)


def test_the_token_guards_every_path_and_the_page_follows_the_prefix(
    served: tuple[str, list[str]],
) -> None:
    base, banner = served
    port = base.rsplit(":", 1)[1]
    user = os.environ.get("USER") or __import__("getpass").getuser()
    assert (
        banner[1]
        == f"from your laptop:  ssh -N -L {port}:127.0.0.1:{port} {user}@login.example.org"
    )
    for path in ("/", "/ws", "/static/js/textual.js", "/download/x", "/?token=nope-nope-nope-nope"):
        status, _, body = _get(base + path)
        assert status == 403 and "wrong or missing token" in body, path
    status, headers, _ = _get(f"{base}/?token={TOKEN}&fontsize=14")
    assert status == 302
    assert headers["Location"] == "/rnode/node7/8022/?fontsize=14"
    assert f"nsml_hpc_token={TOKEN}" in headers["Set-Cookie"]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    status, _, page = _get(f"{base}/", f"nsml_hpc_token={TOKEN}")
    assert status == 200
    websocket = re.search(r'data-session-websocket-url="([^"]+)"', page)
    assert websocket and websocket.group(1) == f"ws://127.0.0.1:{port}/rnode/node7/8022/ws"
    assert f"http://127.0.0.1:{port}/rnode/node7/8022/static/js/textual.js" in page
    assert _get(f"{base}/static/js/textual.js", f"nsml_hpc_token={TOKEN}")[0] == 200


def test_the_ssh_line_and_a_short_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert tunnel_line(8022, "127.0.0.1", "me", "login") == "ssh -N -L 8022:127.0.0.1:8022 me@login"
    assert tunnel_line(9000, "10.1.2.3", "me", "login") == "ssh -N -L 9000:10.1.2.3:9000 me@login"
    assert main(["serve", "--token", "short"]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
