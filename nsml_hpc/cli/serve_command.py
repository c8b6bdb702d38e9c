"""``nsml-hpc serve``: the TUI in a browser (textual-serve), on the login node, behind a
token, reached through an SSH tunnel."""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import secrets
import socket
import sys

from nsml_hpc.cli.common import Commands
from nsml_hpc.errors import ConfigError, SpecError

TOKEN_ENV = "NSML_HPC_SERVE_TOKEN"  # noqa: S105 - the name of a variable, not a secret
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def tunnel_line(port: int, host: str, user: str, login: str) -> str:
    """The ``ssh -L`` line that brings the server to the same port on a laptop."""
    everywhere = ("0.0.0.0", "::")  # noqa: S104 - recognised, not bound here
    target = "127.0.0.1" if host in LOOPBACK or host in everywhere else host
    return f"ssh -N -L {port}:{target}:{port} {user}@{login}"


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the TUI over HTTP for a browser, bound to 127.0.0.1 with a token; prints the
    ssh -L line that reaches it from a laptop.

    Every browser tab runs its own `nsml-hpc tui` here. The token comes from --token, else
    $NSML_HPC_SERVE_TOKEN, else a fresh random one; a request without it gets 403."""
    try:
        web = importlib.import_module("nsml_hpc.tui.web")
    except ImportError as exc:
        raise ConfigError(
            f"serve needs textual-serve: pip install 'nsml-hpc[web]' ({exc})"
        ) from None
    token = args.token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    if len(token) < 16:
        raise SpecError("a token of at least 16 characters, please (or none: one is made up)")
    if args.host not in LOOPBACK:
        print(
            f"nsml-hpc: warning: listening on {args.host}, not only this machine; anyone who "
            "reaches it still needs the token",
            file=sys.stderr,
        )
    login = args.login_host or socket.getfqdn()
    url = f"http://127.0.0.1:{args.port}/?token={token}"

    def announce() -> None:
        print(f"nsml-hpc: serving the TUI on http://{args.host}:{args.port}/ (Ctrl-C stops)")
        print(f"from your laptop:  {tunnel_line(args.port, args.host, getpass.getuser(), login)}")
        print(f"then open:         {url}", flush=True)

    web.serve(
        token=token,
        host=args.host,
        port=args.port,
        session=args.session,
        announce=announce,
        verbose=bool(getattr(args, "verbose", 0)),
        url_prefix=args.url_prefix or "",
    )
    return 0


def register(commands: Commands) -> None:
    serve = commands.add("serve", cmd_serve)
    serve.add_argument("session", nargs="?", help="open this session (PROJECT/N) in every tab")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8022, help="port (8022)")
    serve.add_argument("--token", help=f"the token (default: ${TOKEN_ENV}, else a random one)")
    serve.add_argument(
        "--url-prefix",
        metavar="PATH",
        help="the path a reverse proxy serves it under (Open OnDemand: /rnode/HOST/PORT)",
    )
    serve.add_argument(
        "--login-host",
        metavar="HOST",
        help="the name laptops reach this machine by (for the ssh line)",
    )
