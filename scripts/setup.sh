#!/usr/bin/env bash
# Make a fresh Debian 12/13 machine ready to develop and run nsml-hpc: system packages, a
# virtual environment in .venv with nsml-hpc (editable) and its dev tools. Idempotent: a second
# run only checks. Run as root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)  # the TUI's end-to-end test drives it
# shell completion is tested in each shell; `serve` in a real headless browser (Debian's)
command -v zsh >/dev/null 2>&1 || need_apt+=(zsh)
command -v fish >/dev/null 2>&1 || need_apt+=(fish)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
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

# pyslurm, for the pyslurm backend: the vendored release in ../shared/vendor/pyslurm/ when it
# matches this machine's Slurm (PyPI has pyslurm 25.11 only; the vendor folder holds 22.5.3
# for Debian 12's Slurm 22.05, as a cp311 wheel and its source tarball). The wheel needs
# Slurm's client library (libslurm38 for 22.05); a Python the wheel does not fit gets pyslurm
# built from the tarball (about 8.5 minutes on 2 cores). Without Slurm on the machine yet this
# waits: scripts/test.sh runs setup again once the sandbox has installed it.
major_minor() { awk -F. '{ printf "%d.%d", $1, $2 }' <<<"$1"; }
pyslurm_loads() { .venv/bin/python -c 'import pyslurm' >/dev/null 2>&1; }
apt_lists_ready() {
  # Where Slurm came with the machine, apt's package lists may never have been fetched.
  if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' -e '^auxfiles$')" ]; then
    apt-get update -qq
  fi
}
install_libslurm_for_pyslurm() {
  # The library the installed pyslurm fails to load, as Debian names its package.
  local missing
  missing=$(.venv/bin/python -c 'import pyslurm' 2>&1 | grep -o 'libslurm\.so\.[0-9]*' | head -n 1)
  if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: pyslurm needs $missing: apt-get install libslurm${missing##*.}"
    apt_lists_ready
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "libslurm${missing##*.}" >/dev/null
  fi
}
build_pyslurm() {
  local tarball=$1 root build multiarch
  root=$(pwd)
  echo "setup: building pyslurm from $(basename "$tarball") (the wheel does not fit this Python)"
  apt_lists_ready
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libslurm-dev gcc python3-dev >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check 'Cython>=0.29.30,<3.0' \
    setuptools wheel
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  build=$(mktemp -d)
  tar xzf "$tarball" -C "$build"
  (cd "$build"/pyslurm-* && SLURM_LIB_DIR="/usr/lib/$multiarch" SLURM_INCLUDE_DIR=/usr/include \
    "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check \
    --no-build-isolation .)
  rm -rf "$build"
}
# Where the vendored pyslurm lies: $NSML_HPC_PYSLURM_VENDOR, else the shared folder beside the
# project root, else beside the repository this one was cloned from (a CI clone in /tmp).
pyslurm_vendor() {
  local origin candidate
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  for candidate in "${NSML_HPC_PYSLURM_VENDOR:-}" ../shared/vendor/pyslurm \
    ${origin:+"$(dirname "$origin")/shared/vendor/pyslurm"}; do
    if [ -n "$candidate" ] && ls "$candidate"/pyslurm-*.tar.gz >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
}
install_pyslurm() {
  local vendor tarball wheel version slurm
  vendor=$(pyslurm_vendor)
  if [ -z "$vendor" ]; then
    echo "setup: no vendored pyslurm found (set NSML_HPC_PYSLURM_VENDOR, or put it in" \
      "../shared/vendor/pyslurm): the pyslurm backend's tests will fail" >&2
    return 0
  fi
  tarball=$(ls "$vendor"/pyslurm-*.tar.gz 2>/dev/null | head -n 1 || true)
  if ! command -v sinfo >/dev/null 2>&1; then
    echo "setup: pyslurm waits for Slurm (scripts/test.sh installs it after the sandbox)"
    return 0
  fi
  version=$(basename "$tarball" .tar.gz)
  version=${version#pyslurm-}
  slurm=$(sinfo --version | awk '{ print $2 }')
  if [ "$(major_minor "$version")" != "$(major_minor "$slurm")" ]; then
    echo "setup: pyslurm $version is for Slurm $(major_minor "$version"), this machine runs" \
      "Slurm $slurm: not installed (the pyslurm backend refuses to run here)"
    return 0
  fi
  if [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("pyslurm"))' \
    2>/dev/null)" = "$version" ]; then
    pyslurm_loads || install_libslurm_for_pyslurm
  else
    wheel=$(ls "$vendor"/pyslurm-"$version"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ] || ! .venv/bin/python -m pip install -q --disable-pip-version-check \
      --force-reinstall --no-deps "$wheel" 2>/dev/null; then
      build_pyslurm "$tarball"
    fi
    pyslurm_loads || install_libslurm_for_pyslurm
  fi
  if pyslurm_loads; then
    echo "setup: pyslurm $version for Slurm $slurm"
  else
    echo "setup: pyslurm $version is installed but does not load:" >&2
    .venv/bin/python -c 'import pyslurm' 2>&1 | tail -n 1 >&2
    return 1
  fi
}
install_pyslurm

echo "setup: ready ($(.venv/bin/nsml-hpc --version))"
