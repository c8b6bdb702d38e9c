"""Where the ranks of a multi-node session meet: the first node's address and a free port.

The batch script of a launch mode other than plain sets, on the first node of the allocation
(where Slurm runs the batch script)::

    MASTER_ADDR=$(python -m nsml_hpc.job.rendezvous addr)   # scontrol show node <first>: NodeAddr
    MASTER_PORT=$(python -m nsml_hpc.job.rendezvous port)   # a port free on this node

The address is the first node's ``NodeAddr`` from ``scontrol show node`` rather than its name:
node names need not resolve inside the cluster's network (they do not in the sandbox's two-node
cluster; ``getent hosts duo1`` may be empty), while NodeAddr is how slurmctld itself reaches the
node. The port is one the kernel hands out for a listening socket on this node, released
just before the training script binds it (the usual MASTER_PORT race, small on an exclusive
node). Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys

SCONTROL_TIMEOUT = 30.0
_NODE_ADDR = re.compile(r"(?:^|\s)NodeAddr=(\S+)")


class RendezvousError(Exception):
    """The first node or its address could not be found."""


def parse_node_addr(text: str) -> str | None:
    """``NodeAddr`` from ``scontrol show node NAME`` output (None if absent)."""
    match = _NODE_ADDR.search(text)
    return match.group(1) if match and match.group(1) not in ("", "(null)") else None


def first_hostname(hostnames_output: str) -> str | None:
    """The first line of ``scontrol show hostnames NODELIST``."""
    for line in hostnames_output.splitlines():
        if line.strip():
            return line.strip()
    return None


def _scontrol(*args: str) -> str:
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        raise RendezvousError("scontrol is not on PATH")
    try:
        done = subprocess.run(
            [scontrol, *args],
            capture_output=True,
            text=True,
            timeout=SCONTROL_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RendezvousError(f"scontrol {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise RendezvousError(
            f"scontrol {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def master_addr(nodelist: str | None = None) -> str:
    """The address of the allocation's first node."""
    nodelist = nodelist or os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if not nodelist:
        raise RendezvousError("SLURM_JOB_NODELIST is not set: not inside a Slurm job")
    first = first_hostname(_scontrol("show", "hostnames", nodelist))
    if first is None:
        raise RendezvousError(f"scontrol show hostnames {nodelist} printed no host")
    return parse_node_addr(_scontrol("show", "node", first)) or first


def free_port() -> int:
    """A TCP port nothing listens on here right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["addr"]:
        try:
            print(master_addr())
        except RendezvousError as exc:
            print(f"nsml-hpc: cannot find the rendezvous address: {exc}", file=sys.stderr)
            return 1
        return 0
    if args == ["port"]:
        print(free_port())
        return 0
    print("usage: python -m nsml_hpc.job.rendezvous addr|port", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
