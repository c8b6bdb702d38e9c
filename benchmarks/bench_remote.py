"""Remote clusters: what a submit's upload and a sync cost over SSH (the sandbox's sshd).

Needs the sandbox up (sandbox/slurm-sandbox.sh up) and root (to read alice's key and clean up
her run root afterwards). Run from the repository root:

    .venv/bin/python benchmarks/bench_remote.py [--files 300] [--sessions 50] [--rounds 5]

1. upload: a code tree of --files files (16 KiB each) submitted as alice@127.0.0.1:2222, once
   from scratch and then again with ONE file changed (the seed keeps the rest on the
   cluster), for both transports. Target: the resubmit sends <= 1 % of the first one's bytes.
   The times are the whole ``submit()`` (upload, in-job modules, session.json, job.sbatch,
   rename, sbatch), informational: over loopback, sending a few MiB costs about what copying
   them on the cluster does; over a laptop's uplink (say 10 MiB/s) the bytes dominate.
2. sync: --sessions live sessions whose run directories are on the cluster, each with a
   metrics.jsonl; the poll floor keeps Slurm out of it, so what is timed is the scrape: the
   sizes of all files, and reading the new lines of each. Two cases: nothing new (steady) and
   one new line in every file. Same files read locally (``local`` backend) for comparison.
   Informational (no target): a LAN figure; on a WAN each round trip costs more.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.clusters_file import add_profile
from nsml_hpc.config.settings import load_settings
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.submit.create import prepare, submit
from nsml_hpc.sync.run import sync
from nsml_hpc.workspace import Workspace

SSH_DIR = Path("/var/lib/nsml-sandbox/ssh")
CONTROL = Path(tempfile.mkdtemp(prefix="nsml-bench-cm-", dir="/tmp"))


def profile(name: str, run_root: str, transport: str) -> ClusterProfile:
    return ClusterProfile(
        name=name,
        backend="ssh",
        host="127.0.0.1",
        port=2222,
        user="alice",
        identity_file=str(SSH_DIR / "alice_ed25519"),
        known_hosts=str(SSH_DIR / "known_hosts"),
        run_root=run_root,
        transport=transport,
        control_path=str(CONTROL / "%C") if transport == "openssh" else None,
    )


def bench_upload(
    code: Path, cluster: str, rounds: int
) -> tuple[list[float], list[float], list[int], list[int]]:
    first: list[float] = []
    again: list[float] = []
    first_bytes: list[int] = []
    again_bytes: list[int] = []
    for _ in range(rounds):
        (code / "train.py").write_text(f"print('round {uuid.uuid4().hex}')\n")
        workspace = Workspace.open(load_settings())
        try:
            # A new project each round: the first submit has no seed.
            spec = SessionSpec(
                project=f"b{uuid.uuid4().hex[:8]}", script="train.py", cluster=cluster
            )
            prepared = prepare(spec, workspace.settings, code)
            backend = workspace.backend_for(cluster)
            start = time.perf_counter()
            done = submit(prepared, workspace.catalog, workspace.settings, backend)
            first.append(time.perf_counter() - start)
            assert done.upload is not None
            first_bytes.append(done.upload.bytes_sent)
            (code / "pkg" / "mod0.py").write_text(f"VALUE = {uuid.uuid4().hex!r}\n")
            prepared = prepare(spec, workspace.settings, code)
            start = time.perf_counter()
            done = submit(prepared, workspace.catalog, workspace.settings, backend)
            again.append(time.perf_counter() - start)
            assert done.upload is not None and done.upload.sent == 1, done.upload
            again_bytes.append(done.upload.bytes_sent)
        finally:
            workspace.close()
    return first, again, first_bytes, again_bytes


def _same_dir(path: str, _number: int) -> str:
    return path


def make_sessions(workspace: Workspace, cluster: str, base: Path, count: int) -> list[Path]:
    files = []
    for index in range(count):
        run_dir = base / f"s{index}"
        run_dir.mkdir(parents=True)
        metrics = run_dir / "metrics.jsonl"
        metrics.write_text("".join(f'{{"step":{i},"loss":{1 / (i + 1)}}}\n' for i in range(100)))
        record = reserve_session(
            workspace.catalog,
            spec=SessionSpec(project=f"sync-{cluster}", script="t.py", cluster=cluster),
            user="alice",
            run_dir_for=partial(_same_dir, str(run_dir)),
            is_free=lambda n: True,
            now=time.time(),
        )
        assert record.id is not None
        mark_submitted(
            workspace.catalog,
            record.id,
            job_id=str(10**8 + index),
            cluster=cluster,
            now=time.time(),
        )
        files.append(metrics)
    return files


def bench_sync(cluster: str, files: list[Path], rounds: int) -> tuple[list[float], list[float]]:
    steady: list[float] = []
    growing: list[float] = []
    workspace = Workspace.open(load_settings())
    try:
        sync(workspace.catalog, workspace.settings, workspace.backend_for)  # ingest what is there
        for _ in range(rounds):
            start = time.perf_counter()
            report = sync(
                workspace.catalog, workspace.settings, workspace.backend_for, clusters=[cluster]
            )
            steady.append(time.perf_counter() - start)
            assert report.queried == [] and report.new_points == 0, report
            for path in files:
                with path.open("a") as out:
                    out.write('{"step":1000,"loss":0.001}\n')
            start = time.perf_counter()
            report = sync(
                workspace.catalog, workspace.settings, workspace.backend_for, clusters=[cluster]
            )
            growing.append(time.perf_counter() - start)
            assert report.new_points == len(files), report
    finally:
        workspace.close()
    return steady, growing


def ms(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"median {statistics.median(values) * 1000:7.1f} ms  (min {low:.1f}, max {high:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nsml-bench-"))
    remote_root = Path("/home/alice") / f"nsml-bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        NSML_HPC_CONFIG=str(home / "config.toml"),
        NSML_HPC_CATALOG=f"sqlite:///{home / 'catalog.db'}",
        NSML_HPC_RUN_ROOT=str(home / "runs"),
        NSML_HPC_POLL_FLOOR="100000",  # keep Slurm out of the sync figures
    )
    try:
        for transport in ("paramiko", "openssh"):
            add_profile(profile(transport, str(remote_root), transport), replace=True)
        add_profile(ClusterProfile(name="here"), replace=True)
        code = home / "code"
        (code / "pkg").mkdir(parents=True)
        for index in range(args.files - 1):
            (code / "pkg" / f"mod{index}.py").write_text(f"# {index}\n" + "x = 1\n" * 2700)
        size = sum(p.stat().st_size for p in code.rglob("*") if p.is_file())
        print(
            f"upload: {args.files} files, {size / 2**20:.1f} MiB, {args.rounds} rounds, "
            "alice@127.0.0.1:2222"
        )
        for transport in ("paramiko", "openssh"):
            first, again, sent_first, sent_again = bench_upload(code, transport, args.rounds)
            ratio = max(sent_again) / min(sent_first)
            print(f"  {transport:<8} first submit    {ms(first)}  {max(sent_first)} bytes sent")
            print(f"  {transport:<8} one file edited {ms(again)}  {max(sent_again)} bytes sent")
            print(
                f"  {transport:<8} bytes ratio {ratio:.4f}  target: <= 0.01  "
                + ("MEETS" if ratio <= 0.01 else "MISSES")
                + f"; time ratio {statistics.median(again) / statistics.median(first):.2f}"
            )

        print(
            f"sync: {args.sessions} live sessions, scrape only (Slurm kept out by the poll floor)"
        )
        workspace = Workspace.open(load_settings())
        try:
            sets = {
                cluster: make_sessions(
                    workspace,
                    cluster,
                    (remote_root if cluster != "here" else home / "local-runs") / f"sync-{cluster}",
                    args.sessions,
                )
                for cluster in ("here", "paramiko", "openssh")
            }
        finally:
            workspace.close()
        for cluster, files in sets.items():
            steady, growing = bench_sync(cluster, files, args.rounds)
            label = "local" if cluster == "here" else cluster
            print(f"  {label:<8} nothing new     {ms(steady)}")
            print(f"  {label:<8} 1 line per file {ms(growing)}")
    finally:
        for socket_path in CONTROL.iterdir():
            subprocess.run(
                [
                    "ssh",
                    "-o",
                    f"ControlPath={socket_path}",
                    "-O",
                    "exit",
                    "-p",
                    "2222",
                    "127.0.0.1",
                ],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(CONTROL, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(remote_root, ignore_errors=True)


if __name__ == "__main__":
    main()
