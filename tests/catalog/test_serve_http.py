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


def _get(
    url: str, cookie: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    sent = {**({"Cookie": cookie} if cookie else {}), **(headers or {})}
    request = urllib.request.Request(url, headers=sent)
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


def _websocket_answer(base: str, path: str, headers: dict[str, str]) -> str:
    """The status line and body start a websocket handshake to ``path`` gets (a raw socket:
    urllib cannot take a 101 answer)."""
    host, port = base.removeprefix("http://").split(":")
    request = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        *(f"{key}: {value}" for key, value in headers.items()),
    ]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(("\r\n".join(request) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer or (b" 403 " in answer and b"nsml-hpc" not in answer):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode(errors="replace")


def test_a_websocket_from_another_origin_is_refused_even_with_the_token(
    served: tuple[str, list[str]],
) -> None:
    """A page on another site cannot open the terminal's websocket with the user's cookie
    (the browser sends it along; the Origin header says where the page came from)."""
    base, _ = served
    cookie = {"Cookie": f"nsml_hpc_token={TOKEN}"}
    for evil in ("http://evil.example", "https://evil.example", "null"):
        answer = _websocket_answer(base, "/ws", {**cookie, "Origin": evil})
        assert answer.startswith("HTTP/1.1 403 ") and "cross-origin websocket" in answer, evil
        answer = _websocket_answer(base, f"/ws?token={TOKEN}", {"Origin": evil})
        assert answer.startswith("HTTP/1.1 403 ") and "cross-origin websocket" in answer, evil
    # The same request from the page's own origin is let through: the handshake completes.
    answer = _websocket_answer(base, "/ws", {**cookie, "Origin": base})
    assert answer.startswith("HTTP/1.1 101 "), answer


def _listening(port: int) -> set[str]:
    """The local addresses (hex, as the kernel writes them) of sockets listening on ``port``,
    from /proc/net/tcp and tcp6 (this process's network namespace, the server's too)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                address, _, hex_port = fields[1].partition(":")
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    found.add(address)
    return found


def _own_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (the kernel's local routes)."""
    lines = Path("/proc/net/fib_trie").read_text().splitlines()
    found = {
        lines[index - 1].split()[-1]
        for index, line in enumerate(lines)
        if line.strip() == "/32 host LOCAL" and index > 0
    }
    return sorted(address for address in found if not address.startswith("127."))


def test_the_server_listens_on_loopback_only_by_default(
    served: tuple[str, list[str]],
) -> None:
    base, _ = served
    port = int(base.rsplit(":", 1)[1])
    assert _listening(port) == {"0100007F"}  # 127.0.0.1, and no 0.0.0.0 or :: socket
    for address in _own_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, port), timeout=5).close()
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_the_ssh_line_and_a_short_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert tunnel_line(8022, "127.0.0.1", "me", "login") == "ssh -N -L 8022:127.0.0.1:8022 me@login"
    assert tunnel_line(9000, "10.1.2.3", "me", "login") == "ssh -N -L 9000:10.1.2.3:9000 me@login"
    assert main(["serve", "--token", "short"]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
