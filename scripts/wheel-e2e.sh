#!/usr/bin/env bash
# The wheel is the product: build it, install it NON-editable into a fresh virtual environment
# outside the repository, and run one session end to end on the Slurm sandbox from that install,
# from a folder outside the repository (so the source tree cannot shadow the installed package):
# submit, sync until COMPLETED, ps, show, logs, model ls (a snapshot), a TensorBoard event file
# captured (tensorboardX writes it in the job; the wheel's [tensorboard] extra reads it), and
# the TUI starting headless under tmux. Exits non-zero with a clear message on any failure.
#
#   bash scripts/wheel-e2e.sh        (scripts/test.sh runs it; the sandbox must be up)
#
# NSML_WHEEL_VENV (default /tmp/nsml-wheel-venv) is removed and made anew on every run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${NSML_WHEEL_VENV:-/tmp/nsml-wheel-venv}
work=$(mktemp -d /tmp/nsml-wheel-e2e.XXXXXX)
tmux_socket="nsml-wheel-e2e-$$"
started=$SECONDS

say() { echo "wheel-e2e: $*"; }
fail() {
  echo "wheel-e2e: FAILED: $*" >&2
  exit 1
}
cleanup() {
  tmux -L "$tmux_socket" kill-server >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

case "$venv" in
  "$repo" | "$repo"/*) fail "NSML_WHEEL_VENV=$venv is inside the repository" ;;
esac

say "building the wheel"
"$repo/.venv/bin/python" -m pip wheel --no-deps --no-build-isolation -q -w "$work/dist" "$repo" \
  >"$work/build.log" 2>&1 || { tail -n 20 "$work/build.log" >&2; fail "the wheel did not build"; }
wheel=$(ls "$work"/dist/nsml_hpc-*.whl)

say "installing $(basename "$wheel")[tensorboard] and tensorboardX into a fresh $venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel[tensorboard]" \
  tensorboardX >"$work/install.log" 2>&1 \
  || { tail -n 20 "$work/install.log" >&2; fail "pip install of the wheel failed"; }

# From here on nothing runs inside the repository.
cd "$work"
nsml="$venv/bin/nsml-hpc"
export NSML_HPC_CONFIG="$work/config.toml" NSML_HPC_CATALOG="sqlite:///$work/catalog.db" \
  NSML_HPC_RUN_ROOT="$work/runs" NSML_HPC_POLL_FLOOR=0.5 NSML_HPC_SUBMIT_GRACE=30 \
  XDG_DATA_HOME="$work/xdg-data" XDG_CONFIG_HOME="$work/xdg-config" PYTHONPATH=
: >"$NSML_HPC_CONFIG"

where=$("$venv/bin/python" -c 'import nsml_hpc, nsml_hpc.tui; print(nsml_hpc.__file__)')
[[ $where == "$venv"/* ]] || fail "nsml_hpc was imported from $where, not from $venv"
editable=$("$venv/bin/python" -m pip show -f nsml-hpc 2>/dev/null | grep -ci 'editable' || true)
[[ $editable == 0 ]] || fail "nsml-hpc is installed editable"

mkdir -p "$work/proj"
cat >"$work/proj/train.py" <<'PY'
import time

import nsml_hpc
from tensorboardX import SummaryWriter

writer = SummaryWriter("tb")
for step in range(3):
    loss = 1.0 / (step + 1)
    nsml_hpc.report(step=step, loss=loss)
    writer.add_scalar("tb_loss", loss * 10, step)
    print(f"epoch {step} loss {loss:.3f}", flush=True)
    time.sleep(0.3)
writer.close()
with nsml_hpc.save(step=2) as folder:
    (folder / "weights.txt").write_text("w")
PY
cd "$work/proj"

say "submit"
out=$("$nsml" submit --partition debug train.py 2>&1) || fail "submit: $out"
name=$(sed -n 's/^submitted \([^ ]*\) (job .*/\1/p' <<<"$out")
[[ -n $name ]] || fail "submit printed no session name: $out"

# The end shows first from the job's events (provisional), then accounting confirms it: an
# explicit sync asks Slurm again after the action floor (5 s), so wait for the confirmed end.
say "sync until $name is COMPLETED, as accounting confirms it"
state=""
for _ in $(seq 1 120); do
  "$nsml" sync >"$work/sync.log" 2>&1 || fail "sync: $(tail -n 3 "$work/sync.log")"
  state=$("$nsml" show "$name" --json --no-sync | "$venv/bin/python" -c '
import json, sys
detail = json.load(sys.stdin)
provisional = (detail.get("reason") or "").startswith("provisional")
print(detail["state"] + ("/provisional" if provisional else ""))') \
    || fail "show $name --json failed"
  case "$state" in
    COMPLETED) break ;;
    SUBMITTED | PENDING | RUNNING | COMPLETED/provisional) sleep 1 ;;
    *) fail "$name ended $state: $("$nsml" logs "$name" 2>&1 | tail -n 5)" ;;
  esac
done
[[ $state == COMPLETED ]] || fail "$name is still $state after 2 minutes"

say "ps, show, logs, model ls"
ps_out=$("$nsml" ps --no-sync 2>&1) || fail "ps: $ps_out"
grep -Eq "^$name +COMPLETED" <<<"$ps_out" || fail "ps does not list $name as COMPLETED: $ps_out"
# The last capture look happens in a sync after the end, and accounting may record the job's
# partition a little after its end: sync (a user's explicit refresh) until both are in.
for _ in $(seq 1 60); do
  "$nsml" sync >"$work/sync.log" 2>&1 || fail "sync: $(tail -n 3 "$work/sync.log")"
  show_out=$("$nsml" show "$name" --no-sync 2>&1) || fail "show: $show_out"
  grep -q '^captured .*tb_loss (tensorboard:' <<<"$show_out" \
    && grep -q '^resources   partition=debug' <<<"$show_out" && break
  sleep 1
done
grep -q '^captured .*tb_loss (tensorboard:' <<<"$show_out" \
  || fail "show lists no TensorBoard capture: $show_out"
grep -q '^state       COMPLETED' <<<"$show_out" || fail "show: $show_out"
grep -q '^resources   partition=debug' <<<"$show_out" || fail "show: no resources read back: $show_out"
grep -q 'loss=0.333' <<<"$show_out" || fail "show has no reported metrics: $show_out"
logs_out=$("$nsml" logs "$name" 2>&1) || fail "logs: $logs_out"
grep -q 'epoch 2 loss 0.333' <<<"$logs_out" || fail "logs lack the job's output: $logs_out"
models=$("$nsml" model ls "$name" 2>&1) || fail "model ls: $models"
grep -q 'step-2' <<<"$models" || fail "model ls does not show the snapshot: $models"

say "the TUI starts headless (tmux)"
tmux -L "$tmux_socket" -f /dev/null new-session -d -x 160 -y 40 "$nsml tui" \
  || fail "tmux could not start nsml-hpc tui"
screen=""
for _ in $(seq 1 40); do
  screen=$(tmux -L "$tmux_socket" capture-pane -p 2>/dev/null || true)
  grep -q "$name" <<<"$screen" && break
  sleep 0.5
done
grep -q "$name" <<<"$screen" || fail "the TUI did not show $name: $screen"
tmux -L "$tmux_socket" send-keys q
say "ok: $name submitted, followed, shown, captured and browsed from the installed wheel" \
  "($((SECONDS - started)) s)"
