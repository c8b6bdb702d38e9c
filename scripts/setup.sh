#!/usr/bin/env bash
# Make a fresh Debian 12/13 machine ready to develop and run nsml-hpc: system packages, a
# virtual environment in .venv with nsml-hpc (editable) and its dev tools. Idempotent: a second
# run only checks. Run as root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)  # the TUI's end-to-end test drives it
command -v sshfs >/dev/null 2>&1 || need_apt+=(sshfs)  # a real network file system for the catalog tests
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
fi
python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"setup: nsml-hpc needs Python >= 3.11, found {sys.version.split()[0]}")
PY

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.nsml-hpc-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing nsml-hpc and its dev tools into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/nsml-hpc --version))"
