"""The in-job API's cost: ``import nsml_hpc`` and ``nsml_hpc.report()``.

* import: wall time of ``python -c "import nsml_hpc"`` minus ``python -c "pass"`` (same
  interpreter, fresh process each, median of IMPORT_RUNS), plus ``-X importtime``'s own figure
  for the ``nsml_hpc`` package, and the modules the import loads that are not in the standard
  library (there should be none besides nsml_hpc itself). Target: <= 50 ms.
* report: ``nsml_hpc.report(step=i, loss=.., acc=.., val_loss=.., lr=..)`` CALLS times in a fresh
  process, inside a session (``NSML_HPC_RUN_DIR`` set to a temp dir: every call appends one line
  to metrics.jsonl) and outside one (variable unset: the no-op path). Best of REPORT_ROUNDS
  rounds; the figure includes the Python loop (its cost is shown separately). Target: <= 10 us
  per call inside a session.

Run: ``.venv/bin/python benchmarks/bench_api.py``
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORT_RUNS = 10
CALLS = 200_000
REPORT_ROUNDS = 3
IMPORT_TARGET_MS = 50.0
REPORT_TARGET_US = 10.0

REPORT_SNIPPET = r"""
import json, sys, time
import nsml_hpc

calls, rounds = int(sys.argv[1]), int(sys.argv[2])
losses = [1.0 / (i + 1) for i in range(1000)]
report = nsml_hpc.report

def noop(step=None, **metrics):
    pass

def loop(fn):
    start = time.perf_counter()
    for i in range(calls):
        x = losses[i % 1000]
        fn(step=i, loss=x, acc=0.5 + x / 4, val_loss=x * 1.1, lr=3e-4)
    return time.perf_counter() - start

best = min(loop(report) for _ in range(rounds))
overhead = min(loop(noop) for _ in range(rounds))
print(json.dumps({"best_s": best, "loop_s": overhead}))
"""

MODULES_SNIPPET = r"""
import json, sys
before = set(sys.modules)
import nsml_hpc
new = sorted(set(sys.modules) - before)
print(json.dumps(new))
"""


def run_python(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, env=env, cwd="/"
    )


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NSML_HPC_RUN_DIR", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def wall_ms(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    run_python(["-c", code], env)
    return (time.perf_counter() - start) * 1000


def measure_import(env: dict[str, str]) -> None:
    run_python(["-c", "import nsml_hpc"], env)  # warm the OS cache and write any .pyc
    base: list[float] = []
    full: list[float] = []
    for _ in range(IMPORT_RUNS):  # interleaved so drift hits both alike
        base.append(wall_ms("pass", env))
        full.append(wall_ms("import nsml_hpc", env))
    base_ms, full_ms = statistics.median(base), statistics.median(full)
    net_ms = full_ms - base_ms

    importtime: list[float] = []
    for _ in range(IMPORT_RUNS):
        stderr = run_python(["-X", "importtime", "-c", "import nsml_hpc"], env).stderr
        # "import time: self [us] | cumulative | imported package"; the top-level line.
        match = re.search(r"^import time:\s+\d+ \|\s+(\d+) \| nsml_hpc\s*$", stderr, re.M)
        if match:
            importtime.append(int(match.group(1)) / 1000)
    new_modules = json.loads(run_python(["-c", MODULES_SNIPPET], env).stdout)
    stdlib = sys.stdlib_module_names
    foreign = [
        name
        for name in new_modules
        if name.split(".")[0] not in stdlib and name.split(".")[0] != "nsml_hpc"
    ]
    ours = [name for name in new_modules if name.split(".")[0] == "nsml_hpc"]

    print(f"import nsml_hpc  (fresh process each, median of {IMPORT_RUNS}, {sys.executable})")
    print(f"  python -c 'pass'              {base_ms:7.1f} ms")
    print(f"  python -c 'import nsml_hpc'   {full_ms:7.1f} ms")
    print(f"  net (difference)              {net_ms:7.1f} ms")
    if importtime:
        print(
            f"  -X importtime cumulative      {statistics.median(importtime):7.1f} ms  (nsml_hpc)"
        )
    print(f"  modules newly loaded          {len(new_modules)}: {', '.join(new_modules)}")
    print(f"    of which nsml_hpc           {len(ours)}")
    print(f"  non-stdlib, not nsml_hpc      {foreign if foreign else 'none'}")
    verdict = "MEETS" if net_ms <= IMPORT_TARGET_MS else "MISSES"
    print(f"  target: net <= {IMPORT_TARGET_MS:.0f} ms -> {net_ms:.1f} ms ({verdict})")


def measure_report(env: dict[str, str], run_dir: Path | None) -> tuple[float, float]:
    if run_dir is not None:
        env = {**env, "NSML_HPC_RUN_DIR": str(run_dir)}
    out = run_python(["-c", REPORT_SNIPPET, str(CALLS), str(REPORT_ROUNDS)], env).stdout
    result = json.loads(out)
    return result["best_s"] / CALLS * 1e6, result["loop_s"] / CALLS * 1e6


def main() -> None:
    env = clean_env()
    measure_import(env)
    print()

    workdir = Path(tempfile.mkdtemp(prefix="nsml-bench-api-"))
    try:
        inside_us, loop_us = measure_report(env, workdir)
        lines = (workdir / "metrics.jsonl").read_bytes().count(b"\n")
        expected = CALLS * REPORT_ROUNDS
        if lines != expected:
            raise SystemExit(f"metrics.jsonl has {lines} lines, expected {expected}")
        sample = (workdir / "metrics.jsonl").read_bytes().split(b"\n", 1)[0].decode()
        outside_us, _ = measure_report(env, None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"nsml_hpc.report(step=i, 4 float metrics)  ({CALLS:,} calls, best of {REPORT_ROUNDS} "
        "rounds, fresh process)"
    )
    print(
        f"  inside a session   {inside_us:6.2f} us/call  ({lines:,} lines written, e.g. {sample})"
    )
    print(f"  outside (no-op)    {outside_us:6.2f} us/call")
    print(f"  loop + call of an empty function with the same arguments: {loop_us:.2f} us/call")
    verdict = "MEETS" if inside_us <= REPORT_TARGET_US else "MISSES"
    print(
        f"  target: inside <= {REPORT_TARGET_US:.0f} us -> {inside_us:.2f} us, "
        f"{inside_us / REPORT_TARGET_US:.0%} of the budget ({verdict})"
    )


if __name__ == "__main__":
    main()
