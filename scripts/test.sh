#!/usr/bin/env bash
# Quick start, command 2: the whole test suite, against the real Slurm sandbox and a real
# PostgreSQL server, plus lint and type checks. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash sandbox/slurm-sandbox.sh up
bash scripts/setup.sh  # again, now that Slurm is installed: the vendored pyslurm that matches it
NSML_HPC_TEST_PG_URL=$(bash scripts/postgres.sh | tail -n 1)
NSML_HPC_TEST_PG_ADMIN_URL=$(bash scripts/postgres.sh --admin | tail -n 1)
export NSML_HPC_TEST_PG_URL NSML_HPC_TEST_PG_ADMIN_URL

# Every check runs, even after one fails (so one run shows everything); any failure fails it.
failed=()
check() {
  local name=$1
  shift
  echo "test: $name"
  "$@" || failed+=("$name")
}
check "ruff" .venv/bin/ruff check .
check "ruff format" .venv/bin/ruff format --check .
check "mypy" .venv/bin/mypy
check "wheel-e2e" bash scripts/wheel-e2e.sh  # the installed wheel (not the editable tree)
echo "test: pytest"
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  failed+=("pytest (no tests)")
elif [ "$status" -ne 0 ]; then
  failed+=("pytest (exit $status)")
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "test: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test: all passed"
