#!/usr/bin/env bash
# shellcheck disable=SC2016  # many commands here are meant for an inner shell
# check-site.sh — look at the running sandbox the way a user of a real site would, and print
# what each check saw. Run as root after `slurm-sandbox.sh up`; exit 1 if a check failed.
#
#   check-site.sh [CHECK...]   default: all of  sanity private duo lmod cron tz nfs
#   check-site.sh dbd          stop slurmdbd for ~10 s (dbd-stop/dbd-start): NOT in the default
#                              set, it breaks sacct for everyone using the sandbox meanwhile
#
# Jobs are tiny (sleep 1, hostname) and are submitted as root, alice and bob; files go to a
# fresh directory under /tmp.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
readonly HERE
readonly SANDBOX=$HERE/slurm-sandbox.sh
readonly DUO_CONF=/etc/slurm-duo/slurm.conf
readonly SSH_DIR=/var/lib/nsml-sandbox/ssh
WORK=$(mktemp -d /tmp/nsml-site-check.XXXXXX)
chmod 0777 "$WORK"
readonly WORK
FAILED=0

say() { printf '%s\n' "$*"; }
ok() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; FAILED=1; }
# check DESCRIPTION COMMAND...: ok if COMMAND succeeds.
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
as() { local user=$1; shift; runuser -u "$user" -- "$@"; }

# wait_state CLUSTER JOBID: wait (up to 60 s) until sacct shows a final state; print it.
wait_state() {
  local cluster=$1 id=$2 state="" i
  for (( i = 0; i < 300; i++ )); do
    state=$(sacct -M "$cluster" -n -X -P -j "$id" -o State 2>/dev/null | head -n1)
    case $state in COMPLETED | FAILED | CANCELLED* | TIMEOUT | OUT_OF_MEMORY | NODE_FAIL) break ;; esac
    sleep 0.2
  done
  printf '%s' "$state"
}

# submit USER CLUSTER_CONF SBATCH-ARGS...: print the job id.
submit() {
  local user=$1 conf=$2; shift 2
  (cd "$WORK" && runuser -u "$user" -- env SLURM_CONF="$conf" sbatch --parsable "$@" | cut -d';' -f1)
}

check_sanity() {
  say "== sanity: nsml, sbatch --wrap 'sleep 1' --gres=gpu:2 as root and as alice"
  local user id state
  for user in root alice; do
    id=$(submit "$user" /etc/slurm/slurm.conf --gres=gpu:2 -o "$WORK/sanity-%j.out" --wrap 'sleep 1')
    state=$(wait_state nsml "$id")
    check "$user: job $id on nsml -> $state" test "$state" = COMPLETED
  done
}

check_private() {
  say "== PrivateData=jobs: each user sees only their own jobs (squeue, scontrol, sacct -a)"
  local a b seen conf cluster
  for conf in /etc/slurm/slurm.conf "$DUO_CONF"; do
    cluster=$(sed -n 's/^ClusterName=//p' "$conf")
    a=$(submit alice "$conf" -J private-a -o /dev/null --wrap 'sleep 4')
    b=$(submit bob "$conf" -J private-b -o /dev/null --wrap 'sleep 4')
    say "  [$cluster] alice's job $a, bob's job $b (sleep 4)"
    seen=$(as alice env SLURM_CONF="$conf" squeue -h -o '%i:%u' | tr '\n' ' ')
    say "  [$cluster] alice squeue: $seen"
    check "[$cluster] alice's squeue has $a, not $b" bash -c "[[ ' $seen' == *' $a:alice '* && ' $seen' != *':bob '* ]]"
    seen=$(as bob env SLURM_CONF="$conf" squeue -h -o '%i:%u' | tr '\n' ' ')
    say "  [$cluster] bob squeue: $seen"
    check "[$cluster] bob's squeue has $b, not $a" bash -c "[[ ' $seen' == *' $b:bob '* && ' $seen' != *':alice '* ]]"
    seen=$(as bob env SLURM_CONF="$conf" scontrol show job "$a" 2>&1 | head -n1)
    say "  [$cluster] bob: scontrol show job $a -> $seen"
    check "[$cluster] bob cannot see alice's job in scontrol" bash -c "[[ '$seen' == *'Invalid job id'* ]]"
    seen=$(env SLURM_CONF="$conf" squeue -h -j "$a,$b" -o '%i:%u' | tr '\n' ' ')
    say "  [$cluster] root squeue -j $a,$b: $seen"
    check "[$cluster] root sees both" bash -c "[[ '$seen' == *'$a:alice'* && '$seen' == *'$b:bob'* ]]"
    wait_state "$cluster" "$a" >/dev/null
    wait_state "$cluster" "$b" >/dev/null
    seen=$(as bob env SLURM_CONF="$conf" sacct -a -n -X -P -S now-1hour -o JobID,User | sort -u | tr '\n' ' ')
    say "  [$cluster] bob sacct -a: $seen"
    check "[$cluster] bob's sacct -a has his job $b and no alice job" bash -c "[[ ' $seen' == *' $b|bob '* && '$seen' != *'|alice'* ]]"
    seen=$(as alice env SLURM_CONF="$conf" sacct -n -X -P -j "$b" -o JobID,User)
    say "  [$cluster] alice sacct -j $b: '${seen}'"
    check "[$cluster] alice cannot see bob's job in sacct" test -z "$seen"
    seen=$(env SLURM_CONF="$conf" sacct -n -X -P -j "$a,$b" -o JobID,User | tr '\n' ' ')
    say "  [$cluster] root sacct -j $a,$b: $seen"
    check "[$cluster] root sees both in sacct" bash -c "[[ '$seen' == *'$a|alice'* && '$seen' == *'$b|bob'* ]]"
  done
}

check_duo() {
  say "== duo: sbatch -N2 --gres=gpu:2, srun hostname, TCP between ranks, sacct, alice, requeue"
  cat >"$WORK/duo.sbatch" <<'EOF'
#!/bin/bash
#SBATCH -N2
#SBATCH --gres=gpu:2
set -e
first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
export MASTER_ADDR=$(scontrol show node "$first" | grep -oP 'NodeAddr=\K\S+') MASTER_PORT=29555
echo "batch-host=$(hostname) MASTER_ADDR=$MASTER_ADDR"
srun --ntasks-per-node=1 bash -c 'echo "rank=$SLURM_PROCID host=$(hostname) gpus=$CUDA_VISIBLE_DEVICES"'
srun --ntasks-per-node=1 python3 -c '
import os, socket, time
rank, addr, port = int(os.environ["SLURM_PROCID"]), os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
if rank == 0:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(1); c, peer = s.accept()
    print(f"tcp rank0@{socket.gethostname()} got {c.recv(64).decode()} from {peer[0]}"); c.sendall(b"pong")
else:
    for _ in range(100):
        try: c = socket.create_connection((addr, port), timeout=2); break
        except OSError: time.sleep(0.1)
    c.sendall(f"ping-from-{socket.gethostname()}".encode()); print(f"tcp rank1@{socket.gethostname()} got {c.recv(64).decode()}")
'
EOF
  local id state out user t0
  t0=$(date +%s%N)
  id=$(submit root "$DUO_CONF" -o "$WORK/duo-%j.out" "$WORK/duo.sbatch")
  state=$(wait_state duo "$id")
  say "  root job $id: $state in $(( ($(date +%s%N) - t0) / 1000000 )) ms (submit -> COMPLETED in sacct -M duo)"
  sed 's/^/    /' "$WORK/duo-$id.out"
  out=$(cat "$WORK/duo-$id.out")
  check "job $id COMPLETED" test "$state" = COMPLETED
  check "srun ran on duo1 and duo2" bash -c "grep -q 'host=duo1' <<<'$out' && grep -q 'host=duo2' <<<'$out'"
  check "TCP between the ranks" bash -c "grep -q 'got ping-from-duo2 from 10.231.0.12' <<<'$out' && grep -q 'got pong' <<<'$out'"
  say "  sacct -M duo: $(sacct -M duo -n -X -P -j "$id" -o JobID,Cluster,State,NodeList,AllocTRES)"
  say "  SLURM_CONF=duo sacct: $(SLURM_CONF=$DUO_CONF sacct -n -X -P -j "$id" -o JobID,Cluster,State,NodeList)"
  user=alice
  id=$(submit "$user" "$DUO_CONF" -N2 --gres=gpu:1 -o "$WORK/duo-alice-%j.out" --wrap 'srun hostname')
  state=$(wait_state duo "$id")
  say "  alice job $id: $state; output: $(sort "$WORK/duo-alice-$id.out" | tr '\n' ' ')"
  check "alice's 2-node job COMPLETED, as alice sees it in sacct" \
    bash -c "[[ '$state' == COMPLETED && \$(runuser -u alice -- env SLURM_CONF=$DUO_CONF sacct -n -X -P -j $id -o User,State) == 'alice|COMPLETED' ]]"
  # requeue: a running job goes back to the queue and runs again (restart count 1).
  id=$(submit root "$DUO_CONF" -N2 --requeue -o "$WORK/duo-requeue-%j.out" --open-mode=append \
    --wrap 'echo "run restarts=$SLURM_RESTART_COUNT on $(hostname)"; sleep 3')
  for _ in $(seq 100); do
    [[ $(SLURM_CONF=$DUO_CONF squeue -h -j "$id" -o %T) == RUNNING ]] && break
    sleep 0.1
  done
  sleep 1
  SLURM_CONF=$DUO_CONF scontrol requeue "$id"
  sleep 1
  say "  requeued job $id: $(SLURM_CONF=$DUO_CONF scontrol show job "$id" | grep -oE '(JobState|Reason|EligibleTime)=\S+' | tr '\n' ' ')"
  # Slurm holds a requeued batch job back for ~121 s (BeginTime); let it start now.
  SLURM_CONF=$DUO_CONF scontrol update jobid="$id" StartTime=now
  for _ in $(seq 150); do
    [[ $(SLURM_CONF=$DUO_CONF scontrol show job "$id" 2>/dev/null | grep -oP 'JobState=\K\S+') == COMPLETED ]] && break
    sleep 0.2
  done
  say "  scontrol: $(SLURM_CONF=$DUO_CONF scontrol show job "$id" | grep -oE '(JobState|Restarts)=\S+' | tr '\n' ' ')"
  say "  output: $(tr '\n' ' ' <"$WORK/duo-requeue-$id.out")"
  check "requeue ran the job twice (restarts=0 then 1)" bash -c "grep -q 'restarts=1' '$WORK/duo-requeue-$id.out'"
}

check_lmod() {
  say "== Lmod: module in login shells (local and over ssh as alice), not in env -i bash -c"
  local out
  out=$(as alice bash -lc 'module load demo/1.0 && echo "NSML_DEMO_MODULE=$NSML_DEMO_MODULE $(nsml-demo)"' 2>&1)
  say "  alice bash -lc: $out"
  check "login shell loads demo/1.0" test "$out" = "NSML_DEMO_MODULE=1.0 nsml-demo 1.0"
  out=$(env -i bash -c 'type module' 2>&1)
  say "  env -i bash -c 'type module': $out"
  check "no module in a non-login env" bash -c "[[ '$out' == *'not found'* ]]"
  out=$(env -i bash -c 'source /etc/profile.d/lmod.sh && module load demo/1.0 && echo $NSML_DEMO_MODULE' 2>&1)
  say "  env -i bash -c 'source /etc/profile.d/lmod.sh; module load demo/1.0': $out"
  check "sourcing /etc/profile.d/lmod.sh is enough" test "$out" = 1.0
  out=$(env -i bash -c 'source /usr/share/lmod/lmod/init/bash && module load demo/1.0' 2>&1 | tr -s '\n' ' ')
  say "  env -i bash -c 'source /usr/share/lmod/lmod/init/bash; module load demo/1.0': $out"
  local ssh=(ssh -p 2222 -i "$SSH_DIR/alice_ed25519" -o UserKnownHostsFile="$SSH_DIR/known_hosts"
    -o StrictHostKeyChecking=yes -o BatchMode=yes alice@127.0.0.1)
  out=$("${ssh[@]}" 'bash -lc "module load demo/1.0 && echo \$NSML_DEMO_MODULE"' 2>&1)
  say "  ssh alice 'bash -lc \"module load demo/1.0 ...\"': $out"
  check "over ssh, a login shell loads demo/1.0" test "$out" = 1.0
  out=$("${ssh[@]}" 'type module' 2>&1 | head -n1)
  say "  ssh alice 'type module' (plain command, no login shell): $out"
  out=$(printf 'module load demo/1.0\necho "[$NSML_DEMO_MODULE]"\nexit\n' | "${ssh[@]}" -tt 2>&1 | grep -ao '\[[0-9.]*\]' | head -n1)
  say "  ssh alice interactive login shell: $out"
  check "interactive ssh login has module" test "$out" = "[1.0]"
}

check_cron() {
  say "== cron: alice's crontab line runs within a minute"
  local mark=$WORK/cron-alice.txt i line
  line="* * * * * { date -u +\%FT\%T; id -un; echo \"TZ=\${TZ:-unset} \$(date +\%Z)\"; } > $mark"
  { as alice crontab -l 2>/dev/null | grep -vF "$WORK"; echo "$line"; } | as alice crontab -
  say "  alice crontab -l: $(as alice crontab -l | tail -n1)"
  for (( i = 0; i < 75; i++ )); do [[ -s $mark ]] && break; sleep 1; done
  say "  after ${i}s: $(tr '\n' ' ' <"$mark" 2>/dev/null)"
  check "cron ran alice's line as alice" bash -c "[[ -s '$mark' && \$(sed -n 2p '$mark') == alice ]]"
  as alice crontab -l | grep -vF "$WORK" | as alice crontab -
  say "  scrontab: $(command -v scrontab || echo 'not installed (Debian 12 slurm-client 22.05 ships no scrontab binary)')"
}

check_tz() {
  say "== TZ: daemons run in UTC; a client in Asia/Seoul sees times in its own zone"
  local name pid tz
  for name in slurmctld slurmd slurmdbd cron; do
    for pid in $(pgrep -x "$name"); do
      tz=$(tr '\0' '\n' <"/proc/$pid/environ" | grep '^TZ=' || echo 'TZ unset')
      say "  $name pid $pid: $tz"
      check "$name $pid has TZ=UTC" test "$tz" = TZ=UTC
    done
  done
  local id
  id=$(submit root /etc/slurm/slurm.conf -o /dev/null --wrap 'true')
  wait_state nsml "$id" >/dev/null
  say "  sacct Submit of job $id, TZ unset: $(sacct -n -X -P -j "$id" -o Submit)"
  say "  sacct Submit of job $id, TZ=Asia/Seoul: $(TZ=Asia/Seoul sacct -n -X -P -j "$id" -o Submit)"
  local out
  out=$(TZ=Asia/Seoul ssh -p 2222 -i "$SSH_DIR/alice_ed25519" -o UserKnownHostsFile="$SSH_DIR/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o SendEnv=TZ alice@127.0.0.1 'echo "TZ=${TZ:-unset} $(date +%Z)"')
  say "  ssh session of a client with TZ=Asia/Seoul (SendEnv TZ): $out"
}

check_nfs() {
  say "== NFS"
  local out rc
  out=$(bash "$SANDBOX" nfs-check); rc=$?
  say "  nfs-check rc=$rc: $out"
}

check_dbd() {
  say "== dbd-stop / dbd-start (slurmctld answers, sacct fails meanwhile)"
  local id out t0
  bash "$SANDBOX" dbd-stop
  t0=$(date +%s%N)
  out=$(sacct -n -X -S now-1hour 2>&1 | head -n1)
  say "  sacct while slurmdbd is down: $out"
  id=$(submit alice /etc/slurm/slurm.conf -o /dev/null --wrap 'sleep 1')
  say "  sbatch as alice while slurmdbd is down: job $id; scontrol ping: $(scontrol ping | tr -s ' \n' ' ')"
  sleep 5
  say "  job $id in squeue -t all: $(squeue -h -t all -j "$id" -o %T 2>&1) (~$(( ($(date +%s%N) - t0) / 1000000000 )) s into the outage)"
  bash "$SANDBOX" dbd-start
  say "  sacct after dbd-start: $(wait_state nsml "$id")"
  check "the job run during the outage reached sacct" test "$(wait_state nsml "$id")" = COMPLETED
}

main() {
  local checks=("$@") c
  (( ${#checks[@]} )) || checks=(sanity private duo lmod cron tz nfs)
  say "site checks in $WORK"
  for c in "${checks[@]}"; do "check_$c"; done
  if (( FAILED )); then say "SOME CHECKS FAILED"; exit 1; fi
  say "all checks passed"
}

main "$@"
