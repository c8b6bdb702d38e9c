"""``nsml-hpc serve``: the TUI in a browser, through textual-serve.

Each browser tab that connects starts its own ``nsml-hpc tui`` process on this machine (the
login node) and talks to it over a websocket; nothing else runs. The server listens on
127.0.0.1 by default, so it is reached through an SSH tunnel, and every request must carry
the token: ``/?token=...`` once (the answer sets an HttpOnly, SameSite=Strict cookie and
drops the token from the address), the cookie afterwards. A missing or wrong token gets 403;
so does a websocket opened from another origin. Addresses in the page are built from the
request's own host, so a tunnel on any local port works; behind a reverse proxy that serves
the app under a path (Open OnDemand's ``/rnode/HOST/PORT/``), ``url_prefix`` is that path.
"""

from __future__ import annotations

import hmac
import logging
import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from textual_serve.server import Server

COOKIE = "nsml_hpc_token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenServer(Server):
    """textual-serve's server with a token on every request and no banner."""

    def __init__(
        self,
        command: str,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = 8022,
        title: str = "nsml-hpc",
        announce: Callable[[], None] | None = None,
        verbose: bool = False,
        url_prefix: str = "",
    ) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.token = token
        self.url_prefix = url_prefix.rstrip("/")
        self.announce = announce
        self.verbose = verbose

    def initialize_logging(self) -> None:
        logging.basicConfig(
            level=logging.INFO if self.verbose else logging.WARNING,
            format="nsml-hpc serve: %(message)s",
            stream=sys.stderr,
        )
        logging.getLogger("aiohttp.access").setLevel(
            logging.INFO if self.verbose else logging.WARNING
        )

    async def on_startup(self, app: web.Application) -> None:
        """No banner: :meth:`serve` announces once the socket listens."""

    def serve(self, debug: bool = False) -> None:
        """textual-serve's ``serve``, announcing only once the port is bound (aiohttp calls
        ``print`` then), so whoever reads the announcement can connect at once."""
        import asyncio
        import signal

        from aiohttp.web_runner import GracefulExit

        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        def stop() -> None:
            raise GracefulExit()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=False,
            loop=loop,
            print=lambda *args: self.announce() if self.announce is not None else None,
        )

    def _allowed(self, request: web.Request) -> bool:
        offered = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(offered.encode(), self.token.encode())

    @web.middleware
    async def _check_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._allowed(request):
            return web.Response(status=403, text="nsml-hpc: wrong or missing token\n")
        if request.path == "/ws":
            origin = request.headers.get("Origin")
            host = request.headers.get("X-Forwarded-Host", request.host)
            if origin is not None and origin.split("://", 1)[-1] != host:
                return web.Response(status=403, text="nsml-hpc: cross-origin websocket\n")
        if "token" in request.query:
            rest = {key: value for key, value in request.query.items() if key != "token"}
            target = request.rel_url.with_query(rest)
            response = web.HTTPFound(location=f"{self.url_prefix}{target}")
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
            return response
        return await handler(request)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._check_token)
        return app

    async def handle_index(self, request: web.Request) -> Any:
        """The page, with its addresses built from the request (a tunnel's local port, a
        proxy's scheme) rather than from the address the server listens on."""
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
        host = request.headers.get("X-Forwarded-Host", request.host)
        self.public_url = f"{scheme}://{host}{self.url_prefix}"
        return await super().handle_index(request)


def tui_command(session: str | None = None) -> str:
    """The shell command each browser tab runs: this Python's ``nsml-hpc tui``."""
    words = [sys.executable, "-m", "nsml_hpc", "tui"]
    if session:
        words.append(session)
    return shlex.join(words)


def serve(
    *,
    token: str,
    host: str,
    port: int,
    session: str | None,
    announce: Callable[[], None],
    verbose: bool = False,
    url_prefix: str = "",
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM)."""
    TokenServer(
        tui_command(session),
        token=token,
        host=host,
        port=port,
        announce=announce,
        verbose=verbose,
        url_prefix=url_prefix,
    ).serve()
