"""``nsml-hpc serve`` in a real headless browser (Debian's chromium, driven over the DevTools
protocol): the sessions table renders, Enter opens the session, its metrics tab shows the
plot; a screenshot of each step is written under the test's tmp folder (the paths are
printed, and pytest keeps the folder). The token: a wrong or missing one gets 403, and so
does a websocket without the cookie. The session is a real one, run on the Slurm sandbox.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TOKEN = "t0k3n-for-the-browser-test-0123456789"
TRAIN = """
import nsml_hpc, math
for step in range(60):
    nsml_hpc.report(step=step, loss=2.0 * math.exp(-step / 15), acc=1 - math.exp(-step / 20))
print("trained")
"""

# Records what the server sends the browser's terminal (xterm.js draws it on a canvas).
HOOK = """
(() => {
  const chunks = [];
  const Native = window.WebSocket;
  function Hooked(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener('message', (event) => {
      if (event.data instanceof ArrayBuffer) chunks.push(new Uint8Array(event.data));
    });
    return ws;
  }
  Hooked.prototype = Native.prototype;
  for (const name of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Hooked[name] = Native[name];
  window.WebSocket = Hooked;
  window.__nsmlText = (from) => {
    const decoder = new TextDecoder();
    return chunks.slice(from || 0).map((c) => decoder.decode(c)).join('');
  };
  window.__nsmlCount = () => chunks.length;
})();
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _plain(text: str) -> str:
    """Terminal output without escape sequences (enough to find words in it)."""
    return re.sub(
        r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|.)", "", text
    )


class Cdp:
    """A minimal DevTools-protocol client over one browser websocket (flattened sessions)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        while True:
            reply = json.loads((await self.ws.receive(timeout=60)).data)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})


async def _drive_browser(url: str, shots: Path) -> dict[str, str]:
    import aiohttp

    profile = tempfile.mkdtemp(prefix="nsml-chromium-")
    browser = subprocess.Popen(
        [
            "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1400,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: dict[str, str] = {}
    try:
        assert browser.stderr is not None
        deadline = time.monotonic() + 60
        devtools = None
        while devtools is None and time.monotonic() < deadline:
            line = browser.stderr.readline()
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            devtools = found.group(1) if found else None
        assert devtools, "chromium did not start its DevTools endpoint"
        async with aiohttp.ClientSession() as http, http.ws_connect(devtools, max_msg_size=0) as ws:
            cdp = Cdp(ws)
            target = (await cdp.call("Target.createTarget", url="about:blank"))["targetId"]
            page = (await cdp.call("Target.attachToTarget", targetId=target, flatten=True))[
                "sessionId"
            ]
            await cdp.call("Page.enable", page)
            await cdp.call("Page.addScriptToEvaluateOnNewDocument", page, source=HOOK)
            await cdp.call("Page.navigate", page, url=url)

            async def text(start: int = 0) -> str:
                result = await cdp.call(
                    "Runtime.evaluate",
                    page,
                    expression=f"window.__nsmlText ? window.__nsmlText({start}) : ''",
                    returnByValue=True,
                )
                return _plain(str(result["result"].get("value", "")))

            async def count() -> int:
                result = await cdp.call(
                    "Runtime.evaluate",
                    page,
                    expression="window.__nsmlCount ? window.__nsmlCount() : 0",
                    returnByValue=True,
                )
                return int(result["result"].get("value", 0))

            async def wait_for(pattern: str, start: int, timeout: float = 60.0) -> str:
                end = time.monotonic() + timeout
                while time.monotonic() < end:
                    shown = await text(start)
                    if re.search(pattern, shown):
                        await asyncio.sleep(1.0)  # let the frame finish drawing
                        return await text(start)
                    await asyncio.sleep(0.3)
                await shot(f"timeout-{pattern[:12]}".replace("\\", "").replace("|", "-"))
                raise AssertionError(f"{pattern!r} never appeared: {(await text(start))[-2000:]}")

            async def shot(name: str) -> None:
                data = (await cdp.call("Page.captureScreenshot", page, format="png"))["data"]
                path = shots / f"{name}.png"
                path.write_bytes(base64.b64decode(data))
                print(f"screenshot: {path}")

            async def press(key: str, code: str, keycode: int, text_: str) -> None:
                for kind in ("keyDown", "keyUp"):
                    params: dict[str, Any] = {
                        "type": kind,
                        "key": key,
                        "code": code,
                        "windowsVirtualKeyCode": keycode,
                    }
                    if kind == "keyDown":
                        params["text"] = text_
                    await cdp.call("Input.dispatchKeyEvent", page, **params)

            seen["table"] = await wait_for(r"serve/1", 0)
            await shot("1-sessions")
            for kind in ("mousePressed", "mouseReleased"):  # focus the terminal, below the rows
                await cdp.call(
                    "Input.dispatchMouseEvent",
                    page,
                    type=kind,
                    x=700,
                    y=500,
                    button="left",
                    clickCount=1,
                )
            await cdp.call(
                "Runtime.evaluate",
                page,
                expression="document.querySelector('.xterm-helper-textarea')?.focus()",
            )
            mark = await count()
            for _ in range(6):  # the table may take a moment to take keys after it is drawn
                await press("Enter", "Enter", 13, "\r")
                try:
                    seen["session"] = await wait_for(r"State history", mark, timeout=8)
                    break
                except AssertionError:
                    continue
            else:
                seen["session"] = await wait_for(r"State history", mark, timeout=1)
            await shot("2-session")
            mark = await count()
            await press("2", "Digit2", 50, "2")
            # the curve: block or braille characters, and the step axis under it
            seen["plot"] = await wait_for(r"[\u2580-\u259f\u2801-\u28ff]{4}[\s\S]*step", mark)
            await shot("3-metrics")
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=15)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    return seen


def test_the_tui_in_a_headless_browser_with_a_token(
    workspace: Workspace, project_dir: Path, tmp_path: Path
) -> None:
    assert shutil.which("chromium"), "chromium is installed by scripts/setup.sh"
    write_script(project_dir, "train.py", TRAIN)
    done = submit_script(workspace, project_dir, "train.py", project="serve")
    wait_for_state(workspace, done.name, {"COMPLETED"}, timeout=120)
    time.sleep(0.6)
    workspace.sync()
    assert workspace.metric_names(done.name) == ["acc", "loss"]

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nsml_hpc", "serve", "--port", str(port), "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NSML_HPC_SYNC_INTERVAL": "3600"},
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        banner = [server.stdout.readline() for _ in range(3)]
        # The user and host the line names are this user's (as getpass finds it) and this
        # machine's full name (the server runs here, as this user).
        assert banner[1].strip() == (
            f"from your laptop:  ssh -N -L {port}:127.0.0.1:{port} "
            f"{getpass.getuser()}@{socket.getfqdn()}"
        )
        assert banner[2].strip() == f"then open:         http://127.0.0.1:{port}/?token={TOKEN}"
        base = f"http://127.0.0.1:{port}"
        assert _status(f"{base}/") == 403
        assert _status(f"{base}/?token=wrong-token-wrong-token-wrong") == 403
        assert _status(f"{base}/ws") == 403
        assert _status(f"{base}/static/js/textual.js") == 403
        assert _status(f"{base}/?token={TOKEN}") == 302
        cookie = {"Cookie": f"nsml_hpc_token={TOKEN}"}
        assert _status(f"{base}/", cookie) == 200
        assert _status(f"{base}/", {"Cookie": "nsml_hpc_token=guess"}) == 403

        shots = tmp_path / "screenshots"
        shots.mkdir()
        seen = asyncio.run(_drive_browser(f"{base}/?token={TOKEN}", shots))
        assert "serve/1" in seen["table"] and "COMPLETED" in seen["table"]
        assert "Slurm jobs (one row per run)" in seen["session"]
        assert "loss" in seen["plot"]
        for name in ("1-sessions", "2-session", "3-metrics"):
            png = (shots / f"{name}.png").read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
        print(f"screenshots kept in {shots}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
