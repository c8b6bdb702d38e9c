#!/usr/bin/env bash
# slurm-sandbox.sh — a real Slurm site on one machine, for nsml-hpc's integration tests.
#
# Brings up munge + MariaDB + slurmdbd + slurmctld + slurmd + an sshd on 127.0.0.1:2222 on a
# Debian machine WITHOUT systemd (CI machines, containers): the one-node cluster `nsml`. Beside it
# runs a second cluster, `duo`, with two compute nodes in their own network namespaces, sharing
# munge and slurmdbd. Around them, what a real site has: PrivateData=jobs, real users, Lmod with
# a site module, cron, daemons in UTC. Every config file is written here, from heredocs, so this
# script is the single source of truth for the site; the Docker image (sandbox/Dockerfile) runs
# this same script.
#
#   slurm-sandbox.sh install   apt-get install the missing Debian packages (nothing else)
#   slurm-sandbox.sh up        install, write configs, start what is down, wait for the nodes
#   slurm-sandbox.sh run       up, then stay in the foreground until SIGTERM/SIGINT, then down
#   slurm-sandbox.sh down      stop every sandbox daemon, remove the duo cluster's namespaces
#   slurm-sandbox.sh status    daemons up/down + the nodes' sinfo lines; exit 0 only if usable
#   slurm-sandbox.sh logs [N]  last N (default 30) lines of every daemon log
#   slurm-sandbox.sh dbd-stop  stop slurmdbd only (slurmctld keeps answering); `up` restarts it
#   slurm-sandbox.sh dbd-start start slurmdbd again and wait until it answers
#   slurm-sandbox.sh nfs-check exit 0 if an NFS mount is at /mnt/nsml-nfs, else print why not
#                              and exit 3 (the development kernel has no NFS: see docs/sandbox.md)
#
# Environment:
#   NSML_SANDBOX_FOREGROUND=1     make `up` behave like `run` (for container entrypoints)
#   NSML_SANDBOX_SSH_LISTEN=ADDR  sshd listen address (default 127.0.0.1; the image uses 0.0.0.0
#                                 because Docker forwards published ports to the container's eth0)
#   NSML_SANDBOX_TIMEOUT=SECONDS  how long `up` waits for the nodes to become usable (default 60)
#   NSML_SANDBOX_DUO=0            do not bring up the two-node cluster `duo` (default 1: bring it
#                                 up where network namespaces can be made, else warn and skip)
#
# The caller's SLURM_CONF and TZ do not leak into the site: the script unsets SLURM_CONF (the
# `nsml` daemons read /etc/slurm/slurm.conf, the `duo` ones get theirs explicitly) and starts
# every daemon with TZ=UTC.
#
# Works on Debian 12 (Slurm 22.05) and Debian 13 (Slurm 24.11); see docs/sandbox.md.
set -euo pipefail
unset SLURM_CONF
export TZ=UTC

# ---------------------------------------------------------------------------------------------
# Settings (the tests rely on these: 4 GPUs are the only scarce resource, CPUs are plentiful)
# ---------------------------------------------------------------------------------------------
readonly CLUSTER=nsml
readonly PARTITION=debug
# A second partition on the same node that takes at most one CPU's worth of jobs: it is full
# as soon as one job runs in it, which `sbatch --test-only` sees (tests of --partition auto).
# It is listed first, so that on an empty cluster `auto` picks it and the tests can tell a
# choice made for room from a tie.
readonly SMALL_PARTITION=small
readonly NODE_CPUS=8
readonly NODE_MEMORY_MB=8000
readonly NODE_GPUS=4
readonly ACCOUNT=research
readonly TEST_USERS=(alice bob)
readonly DB_NAME=slurm_acct_db
readonly DB_USER=slurm
readonly DB_PASS=slurmdbpass
readonly SSH_PORT=2222
readonly SSH_LISTEN=${NSML_SANDBOX_SSH_LISTEN:-127.0.0.1}
readonly READY_TIMEOUT=${NSML_SANDBOX_TIMEOUT:-60}

readonly PACKAGES=(slurmctld slurmd slurmdbd slurm-client munge mariadb-server mariadb-client
                   openssh-server openssh-client procps iproute2 util-linux lmod cron)

readonly STATE_DIR=/var/lib/nsml-sandbox
readonly SSH_DIR=$STATE_DIR/ssh
readonly SSHD_CONFIG=$SSH_DIR/sshd_config
readonly KNOWN_HOSTS=$SSH_DIR/known_hosts
readonly HOST_KEY=/etc/ssh/ssh_host_ed25519_key
readonly FAKEGPU_DIR=/var/lib/slurm/fakegpu
readonly SLURM_ETC=/etc/slurm
readonly MARIADB_CNF=/etc/mysql/mariadb.conf.d/99-nsml-sandbox.cnf
readonly MARIADB_DATADIR=/var/lib/mysql
readonly LOCK_FILE=/run/nsml-sandbox.lock

# The second cluster: two compute nodes, each a slurmd in its own network + UTS namespace, on a
# bridge in the root namespace. Its own slurmctld (other ports), config dir, state and logs; the
# munge and slurmdbd of `nsml`. Clients target it with SLURM_CONF=$DUO_CONF (or -M duo).
readonly DUO_CLUSTER=duo
readonly DUO_PARTITION=debug
readonly DUO_NODES=(duo1 duo2)
readonly DUO_NODE_CPUS=4
readonly DUO_NODE_MEMORY_MB=4000
readonly DUO_GPUS_PER_NODE=2
# Typed, as on a real site (--gpus a100:N must reach Slurm); nsml's GPUs stay untyped.
readonly DUO_GPU_TYPE=a100
readonly DUO_SUBNET=10.231.0          # bridge .1, duo1 .11, duo2 .12 (/24)
readonly DUO_BRIDGE=br-nsmlduo
readonly DUO_CTLD_PORT=7817
readonly DUO_SLURMD_PORT=7818
readonly DUO_ETC=/etc/slurm-duo
readonly DUO_CONF=$DUO_ETC/slurm.conf
readonly DUO_STATE=/var/lib/slurm-duo
readonly DUO_FAKEGPU_DIR=$DUO_STATE/fakegpu
readonly DUO_LOG_DIR=/var/log/slurm-duo
readonly DUO_RUN=/run/slurm-duo
DUO_WANTED=${NSML_SANDBOX_DUO:-1}

# Lmod, the way a site sets it up: Debian's lmod package (its /etc/profile.d/lmod.sh defines
# `module` in login shells), a site modulefile tree, listed in Lmod's /etc/lmod/modulespath.
readonly SITE_DIR=/opt/nsml-sandbox
readonly MODULEFILES_DIR=$SITE_DIR/modulefiles
readonly LMOD_MODULESPATH=/etc/lmod/modulespath
readonly LMOD_INIT_BASH=/usr/share/lmod/lmod/init/bash

# Where a test would find an NFS mount (nfs-check); nothing mounts one yet (no NFS in the kernel).
readonly NFS_MOUNT_DIR=/mnt/nsml-nfs

# Daemons in start order. Each has a key (used in messages), the process name it runs under
# (/proc/PID/comm), its pid file and its log file; stop order is the reverse. The duo cluster's
# daemons run under the same names as nsml's: MATCH is a string their command line contains
# (the nsml ones are those whose command line does not mention $DUO_ETC). Other names are not an
# option: started through a symlink named duo-slurmctld, slurmctld 22.05 segfaults right after
# recovering its state (measured). So anything that finds daemons by `pgrep -x slurmctld` (the
# copy of this script before the duo cluster, for one) also finds, and stops, duo's.
readonly DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd sshd cron)
readonly DUO_DAEMONS=(duo-slurmctld duo-slurmd-duo1 duo-slurmd-duo2)
declare -A COMM=(
  [munged]=munged [mariadbd]=mariadbd [slurmdbd]=slurmdbd [slurmctld]=slurmctld [slurmd]=slurmd
  [sshd]=sshd [cron]=cron
  [duo-slurmctld]=slurmctld [duo-slurmd-duo1]=slurmd [duo-slurmd-duo2]=slurmd
)
declare -A MATCH=(
  [sshd]="-f $SSHD_CONFIG"
  [duo-slurmctld]="-f $DUO_CONF"
  [duo-slurmd-duo1]="-N duo1" [duo-slurmd-duo2]="-N duo2"
)
declare -A PIDFILE=(
  [munged]=/run/munge/munged.pid
  [mariadbd]=/run/mysqld/mysqld.pid
  [slurmdbd]=/run/slurmdbd.pid
  [slurmctld]=/run/slurmctld.pid
  [slurmd]=/run/slurmd.pid
  [sshd]=/run/sshd-$SSH_PORT.pid
  [cron]=/run/crond.pid
  [duo-slurmctld]=$DUO_RUN/slurmctld.pid
  [duo-slurmd-duo1]=$DUO_RUN/slurmd-duo1.pid
  [duo-slurmd-duo2]=$DUO_RUN/slurmd-duo2.pid
)
declare -A LOGFILE=(
  [munged]=/var/log/munge/munged.log
  [mariadbd]=/var/log/mysql/error.log
  [slurmdbd]=/var/log/slurm/slurmdbd.log
  [slurmctld]=/var/log/slurm/slurmctld.log
  [slurmd]=/var/log/slurm/slurmd.log
  [sshd]=/var/log/sshd-$SSH_PORT.log
  [cron]=/var/log/syslog   # cron logs to syslog only; no syslog daemon runs here
  [duo-slurmctld]=$DUO_LOG_DIR/slurmctld.log
  [duo-slurmd-duo1]=$DUO_LOG_DIR/slurmd-duo1.log
  [duo-slurmd-duo2]=$DUO_LOG_DIR/slurmd-duo2.log
)
readonly COMM MATCH PIDFILE LOGFILE
# Daemons whose times users see (job times, cron schedules, ssh sessions, which inherit sshd's
# TZ): restarted once if running without TZ=UTC in their environment (started by hand or by an
# older version of this script).
readonly TZ_DAEMONS=(slurmdbd slurmctld slurmd sshd cron duo-slurmctld duo-slurmd-duo1 duo-slurmd-duo2)

# Filled in by detect_environment.
NODE=""
NODE_STATE=""
SLURM_VERSION=""
ASSOCS=""
SLURM_MAJOR=0
# Daemons whose config file changed during this run: a running one is restarted.
declare -A CONFIG_CHANGED=()

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
say() { printf 'sandbox: %s\n' "$*"; }
warn() { printf 'sandbox: WARNING: %s\n' "$*" >&2; }

# Microseconds since the epoch, for the timings printed in the summary.
now_us() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$t"; }
elapsed_since() { local us=$(( $(now_us) - $1 )); printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000)); }

# What a daemon printed while starting (config errors come before its log file is open).
start_log() { printf '%s/start-%s.log' "$STATE_DIR" "$1"; }

# Print the last lines of every daemon log (used by `logs` and when `up` fails).
show_logs() {
  local lines=${1:-30} name
  for name in "${DAEMONS[@]}" "${DUO_DAEMONS[@]}"; do
    printf '===== %s (%s) =====\n' "$name" "${LOGFILE[$name]}"
    if [[ -r ${LOGFILE[$name]} ]]; then tail -n "$lines" "${LOGFILE[$name]}"; else echo "(no log yet)"; fi
    if [[ -s $(start_log "$name") ]]; then
      printf -- '----- %s, output of its last start (%s) -----\n' "$name" "$(start_log "$name")"
      tail -n "$lines" "$(start_log "$name")"
    fi
  done
}

# Fail loudly: the message, the node's view from slurmctld, and the daemon logs, on stderr.
fail() {
  {
    printf 'sandbox: ERROR: %s\n' "$*"
    if [[ -n $NODE ]] && is_up slurmctld; then
      timeout 10 sinfo -N -l 2>&1 || true
      timeout 10 scontrol show node "$NODE" 2>&1 | grep -E 'State=|Reason=|Gres=' || true
    fi
    if is_up duo-slurmctld; then
      SLURM_CONF=$DUO_CONF timeout 10 sinfo -N -l 2>&1 || true
    fi
    show_logs 30
  } >&2
  exit 1
}

require_root() {
  [[ $(id -u) -eq 0 ]] || { echo "sandbox: must run as root (it installs packages and starts daemons)" >&2; exit 2; }
}

# Serialise `up`/`down`/`run`: two tests calling `up` at once must not start daemons twice.
take_lock() {
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || fail "another slurm-sandbox.sh holds $LOCK_FILE for more than 120 s"
}

# Poll COMMAND every 0.1 s until it succeeds or TIMEOUT seconds pass.
wait_until() {
  local timeout=$1; shift
  local deadline=$(( $(now_us) + timeout * 1000000 ))
  until "$@" >/dev/null 2>&1; do
    (( $(now_us) < deadline )) || return 1
    sleep 0.1
  done
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# write_file DEST MODE OWNER [DAEMON...]: write stdin to DEST if its content differs, and then
# mark the DAEMONs that read DEST for a restart; always fix mode and owner.
write_file() {
  local dest=$1 mode=$2 owner=$3 tmp daemon
  shift 3
  tmp=$(mktemp "$dest.XXXXXX")
  cat >"$tmp"
  if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$dest"
    for daemon in "$@"; do CONFIG_CHANGED[$daemon]=1; done
  fi
  chmod "$mode" "$dest"
  chown "$owner" "$dest"
}

# ---------------------------------------------------------------------------------------------
# Process tracking. Without systemd, daemonised parents are reaped lazily by PID 1, so a
# finished daemon can linger as a zombie for which `kill -0` still succeeds: look at the
# state field of /proc/PID/stat instead, and check the process name against pid reuse.
# ---------------------------------------------------------------------------------------------
pid_is_live() {
  local pid=$1 comm=$2 stat rest
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  [[ ${rest%% *} != [ZX] ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# The command line of PID, NULs as spaces.
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# Is PID the daemon NAME: a live process with its name, and its command line contains
# MATCH[NAME] (sshd: our config, so a system sshd on port 22 is never touched; the duo daemons:
# their config or node name), or, for daemons without a MATCH, does not mention the duo cluster.
is_daemon_pid() {
  local name=$1 pid=$2 cmd
  pid_is_live "$pid" "${COMM[$name]}" || return 1
  cmd=$(cmdline_of "$pid")
  if [[ -n ${MATCH[$name]:-} ]]; then
    [[ $cmd == *"${MATCH[$name]}"* ]]
  else
    [[ $cmd != *"$DUO_ETC/"* ]]
  fi
}

# Print the live pids of daemon NAME: the one in its pid file, and any other process that is it
# (a daemon whose pid file was lost still counts).
daemon_pids() {
  local name=$1 pid
  local -A seen=()
  if [[ -r ${PIDFILE[$name]} ]]; then
    pid=$(tr -dc '0-9' <"${PIDFILE[$name]}")
    if is_daemon_pid "$name" "$pid"; then seen[$pid]=1; fi
  fi
  for pid in $(pgrep -x -- "${COMM[$name]}" || true); do
    if is_daemon_pid "$name" "$pid"; then seen[$pid]=1; fi
  done
  if (( ${#seen[@]} )); then printf '%s\n' "${!seen[@]}"; fi
}

is_up() { [[ -n $(daemon_pids "$1") ]]; }

# all_gone NAME PID...: true once none of the pids is a live NAME process.
all_gone() {
  local name=$1 pid; shift
  for pid in "$@"; do
    if pid_is_live "$pid" "${COMM[$name]}"; then return 1; fi
  done
}

stop_daemon() {
  local name=$1 pids pid
  pids=$(daemon_pids "$name")
  [[ -n $pids ]] || return 0
  say "stopping $name ($(echo "$pids" | tr '\n' ' ' | sed 's/ $//'))"
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  # MariaDB and slurmctld save state on TERM; give them time before the hammer.
  # shellcheck disable=SC2086  # $pids is a list of numbers
  if ! wait_until 30 all_gone "$name" $pids; then
    warn "$name did not stop after 30 s; sending KILL"
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.5
  fi
  rm -f "${PIDFILE[$name]}"
}

# ---------------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------------
# Print those of the named packages that are not installed (one dpkg-query call for all).
missing_packages() {
  local -A installed=()
  local pkg status
  while IFS=' ' read -r pkg status; do
    [[ $status == "install ok installed" ]] && installed[$pkg]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for pkg in "$@"; do
    [[ -n ${installed[$pkg]:-} ]] || echo "$pkg"
  done
}

# install_packages [PKG...]: apt-get install those missing (default: PACKAGES).
install_packages() {
  local missing=() added_policy=0
  (( $# )) || set -- "${PACKAGES[@]}"
  mapfile -t missing < <(missing_packages "$@")
  if (( ${#missing[@]} == 0 )); then return 0; fi
  say "installing ${missing[*]}"
  # Without systemd, maintainer scripts would try to start the daemons through init.d; this
  # standard Debian hook (exit 101 = "not allowed") stops them. Docker images already have it.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if (( added_policy )); then rm -f /usr/sbin/policy-rc.d; fi
  say "installed ${#missing[@]} package(s)"
}

# ---------------------------------------------------------------------------------------------
# Host preparation
# ---------------------------------------------------------------------------------------------
detect_environment() {
  NODE=$(hostname -s 2>/dev/null || uname -n)
  NODE=${NODE%%.*}
  SLURM_VERSION=$(slurmctld -V | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)
  SLURM_MAJOR=${SLURM_VERSION%%.*}
  [[ -n $SLURM_VERSION ]] || fail "cannot parse the Slurm version from 'slurmctld -V'"
}

# slurmd finds its NodeName through `hostname -s`, and the Slurm tools resolve that name and
# "localhost" (AccountingStorageHost); a bare chroot may have no /etc/hosts at all. The duo
# nodes' names resolve to their addresses, as compute node names do at a site (Slurm itself
# does not need it: it uses NodeAddr).
ensure_names_resolve() {
  local name
  for name in localhost "$NODE"; do
    if ! getent hosts "$name" >/dev/null; then
      say "adding '127.0.0.1 $name' to /etc/hosts"
      printf '127.0.0.1 %s\n' "$name" >>/etc/hosts
    fi
  done
  if duo_enabled; then
    for name in "${DUO_NODES[@]}"; do
      if ! getent hosts "$name" >/dev/null; then
        say "adding '$(duo_addr "$name") $name' to /etc/hosts"
        printf '%s %s\n' "$(duo_addr "$name")" "$name" >>/etc/hosts
      fi
    done
  fi
}

# Runtime and log directories: without systemd nobody creates them (no tmpfiles.d).
prepare_directories() {
  getent passwd slurm >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin slurm
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  install -d -o mysql -g adm -m 2750 /var/log/mysql
  install -d -o slurm -g slurm -m 0755 /var/log/slurm /var/lib/slurm /var/lib/slurm/slurmctld
  install -d -o root -g root -m 0755 /var/lib/slurm/slurmd "$FAKEGPU_DIR" /run/sshd
  install -d -o root -g root -m 0700 "$STATE_DIR" "$SSH_DIR"
  if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating the munge key"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 0700 /etc/munge
  chmod 0600 /etc/munge/munge.key
}

# Fake GPUs. Slurm only binds a GPU gres to CUDA_VISIBLE_DEVICES when its File= is a character
# (or block) device: regular files are ignored ("not a valid character or block device") and a
# count-only gres is dropped by slurmd, leaving the node INVALID+DRAIN. Nodes with major 195
# (NVIDIA's) outside /dev keep /dev clean; nothing ever opens them.
# Prints the gres.conf File= part; falls back to existing char devices if mknod is not allowed.
make_fake_gpus() {
  local i dev ok=1
  for (( i = 0; i < NODE_GPUS; i++ )); do
    dev=$FAKEGPU_DIR/gpu$i
    [[ -c $dev ]] && continue
    rm -f "$dev"
    mknod -m 666 "$dev" c 195 "$i" 2>/dev/null || { ok=0; break; }
  done
  if (( ok )); then
    echo "NodeName=$NODE Name=gpu File=$FAKEGPU_DIR/gpu[0-$((NODE_GPUS - 1))]"
  else
    warn "mknod is not allowed here (no CAP_MKNOD?); using /dev/null-style char devices as fake GPUs"
    for dev in /dev/null /dev/zero /dev/full /dev/urandom; do
      echo "NodeName=$NODE Name=gpu File=$dev"
    done
  fi
}

# ---------------------------------------------------------------------------------------------
# Config files
# ---------------------------------------------------------------------------------------------
write_mariadb_config() {
  # innodb values: slurmdbd logs "Database settings not recommended" below these.
  write_file "$MARIADB_CNF" 0644 root:root mariadbd <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
[mysqld]
bind-address=127.0.0.1
pid-file=${PIDFILE[mariadbd]}
socket=/run/mysqld/mysqld.sock
log-error=${LOGFILE[mariadbd]}
innodb_buffer_pool_size=512M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
max_allowed_packet=16M
EOF
}

write_slurmdbd_config() {
  # slurmdbd refuses to start unless this file is 0600 and owned by SlurmUser.
  # DbdHost=localhost is accepted whatever the machine's hostname is.
  write_file "$SLURM_ETC/slurmdbd.conf" 0600 slurm:slurm slurmdbd <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=${LOGFILE[slurmdbd]}
PidFile=${PIDFILE[slurmdbd]}
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
# Like many sites: a user sees only their own jobs in sacct (root and SlurmUser see all).
PrivateData=jobs
EOF
}

write_slurm_config() {
  local gres_lines=$1
  write_file "$SLURM_ETC/slurm.conf" 0644 root:root slurmctld slurmd <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
# One node, $NODE_GPUS fake GPUs, $NODE_CPUS CPUs: GPUs are the only resource jobs wait for.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=${LOGFILE[slurmctld]}
SlurmdLogFile=${LOGFILE[slurmd]}
SlurmctldDebug=info
SlurmdDebug=info
# No mail binary on these machines; Slurm logs "MailProg is invalid" without this.
MailProg=/bin/true
# No systemd and maybe no writable cgroups: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MpiDefault=none
# A node that went down comes back by itself once slurmd registers with a valid config.
ReturnToService=2
SchedulerType=sched/backfill
# Look at pending jobs every 2 s instead of every 60/30 s, so queued jobs start promptly.
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
# Snappy tests: SIGKILL 5 s after SIGTERM on scancel/timeout; finished jobs stay visible to
# squeue/scontrol for 5 minutes; jobs may be requeued.
KillWait=5
InactiveLimit=0
MinJobAge=300
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations
JobCompType=jobcomp/none
# Like many sites: squeue/scontrol show a user only their own jobs (root sees all).
PrivateData=jobs
# The node has 2 real cores; config_overrides makes slurmd report the configured 8 CPUs.
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEMORY_MB Gres=gpu:$NODE_GPUS State=UNKNOWN
PartitionName=$SMALL_PARTITION Nodes=ALL MaxCPUsPerNode=1 MaxTime=INFINITE State=UP
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  write_file "$SLURM_ETC/gres.conf" 0644 root:root slurmctld slurmd <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
AutoDetect=off
$gres_lines
EOF
  # Slurm 22.05 has no way to switch cgroups off (it loads cgroup/v1 or v2 and copes on this
  # kind of host). 24.11 refuses to start slurmd without a usable cgroup setup ("Unable to
  # initialize cgroup plugin", seen in a Debian 13 chroot) unless CgroupPlugin=disabled; we
  # track processes through /proc anyway.
  if (( SLURM_MAJOR >= 24 )); then
    write_file "$SLURM_ETC/cgroup.conf" 0644 root:root slurmctld slurmd <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
CgroupPlugin=disabled
EOF
  elif [[ -f $SLURM_ETC/cgroup.conf ]] && grep -q 'nsml-hpc sandbox' "$SLURM_ETC/cgroup.conf"; then
    rm -f "$SLURM_ETC/cgroup.conf"
    CONFIG_CHANGED[slurmctld]=1 CONFIG_CHANGED[slurmd]=1
  fi
}

write_sshd_config() {
  # UsePAM no: pam_loginuid fails in unprivileged containers. Without PAM, sshd refuses
  # accounts whose password is locked ('!'), so ensure_test_users sets it to '*' (no password,
  # not locked); keys are the only way in.
  write_file "$SSHD_CONFIG" 0644 root:root sshd <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
Port $SSH_PORT
ListenAddress $SSH_LISTEN
HostKey $HOST_KEY
PidFile ${PIDFILE[sshd]}
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers ${TEST_USERS[*]}
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

# ---------------------------------------------------------------------------------------------
# Users and SSH keys
# ---------------------------------------------------------------------------------------------
ensure_test_users() {
  local user home key
  for user in "${TEST_USERS[@]}"; do
    if ! getent passwd "$user" >/dev/null; then
      say "creating user $user"
      useradd -m -s /bin/bash "$user"
    fi
    # useradd leaves the password locked ('!'); sshd without PAM would then refuse the user.
    if [[ $(getent shadow "$user" | cut -d: -f2) == '!'* ]]; then usermod -p '*' "$user"; fi
    home=$(getent passwd "$user" | cut -d: -f6)
    key=$SSH_DIR/${user}_ed25519
    if [[ ! -s $key || ! -s $key.pub ]]; then
      rm -f "$key" "$key.pub"
      ssh-keygen -q -t ed25519 -N '' -C "$user@nsml-sandbox" -f "$key"
    fi
    chmod 0600 "$key"
    install -d -o "$user" -g "$(id -gn "$user")" -m 0700 "$home/.ssh"
    touch "$home/.ssh/authorized_keys"
    grep -qxF -- "$(cat "$key.pub")" "$home/.ssh/authorized_keys" || cat "$key.pub" >>"$home/.ssh/authorized_keys"
    chown "$user:$(id -gn "$user")" "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
  done
}

# Pin the host key for clients (paramiko's RejectPolicy, ssh StrictHostKeyChecking=yes).
# Rewritten on every 'up': reinstalling openssh-server regenerates the host keys.
write_known_hosts() {
  [[ -s $HOST_KEY ]] || ssh-keygen -A
  printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$HOST_KEY.pub")" \
    | write_file "$KNOWN_HOSTS" 0644 root:root
}

# ---------------------------------------------------------------------------------------------
# Lmod: a site module tree, made visible the way a site does it (Lmod's own modulespath file,
# read by /etc/profile.d/lmod.sh in login shells only).
# ---------------------------------------------------------------------------------------------
write_site_modules() {
  install -d -o root -g root -m 0755 "$SITE_DIR" "$MODULEFILES_DIR" "$MODULEFILES_DIR/demo" \
    "$SITE_DIR/demo" "$SITE_DIR/demo/1.0" "$SITE_DIR/demo/1.0/bin"
  write_file "$SITE_DIR/demo/1.0/bin/nsml-demo" 0755 root:root <<'EOF'
#!/bin/sh
# Written by nsml-hpc sandbox/slurm-sandbox.sh: on PATH only after `module load demo/1.0`.
echo "nsml-demo 1.0"
EOF
  write_file "$MODULEFILES_DIR/demo/1.0.lua" 0644 root:root <<EOF
-- Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
whatis("nsml-hpc sandbox demo module: sets NSML_DEMO_MODULE and puts nsml-demo on PATH")
setenv("NSML_DEMO_MODULE", "1.0")
prepend_path("PATH", "$SITE_DIR/demo/1.0/bin")
EOF
  if [[ -f $LMOD_MODULESPATH ]] && ! grep -qxF "$MODULEFILES_DIR" "$LMOD_MODULESPATH"; then
    say "adding $MODULEFILES_DIR to $LMOD_MODULESPATH"
    printf '# nsml-hpc sandbox site modules (sandbox/slurm-sandbox.sh)\n%s\n' "$MODULEFILES_DIR" >>"$LMOD_MODULESPATH"
  fi
  [[ -r $LMOD_INIT_BASH ]] || warn "Lmod's bash init script is not at $LMOD_INIT_BASH"
}

# ---------------------------------------------------------------------------------------------
# Daemons, in dependency order. Each start_* returns once the daemon answers.
# ---------------------------------------------------------------------------------------------
# Stop a running daemon whose config changed in this run, so the start below picks it up.
restart_if_config_changed() {
  local name
  for name in "$@"; do
    if [[ -n ${CONFIG_CHANGED[$name]:-} ]] && is_up "$name"; then
      say "$name config changed; restarting it"
      stop_daemon "$name"
    fi
  done
}

munge_works() { munge -n </dev/null | unmunge >/dev/null; }

start_munged() {
  if ! is_up munged; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged </dev/null >"$(start_log munged)" 2>&1 9>&- || fail "munged did not start"
  fi
  wait_until 10 munge_works || fail "munge does not work (munge -n | unmunge)"
}

mariadb_ping() { mariadb-admin --connect-timeout=2 ping; }

start_mariadbd() {
  if [[ ! -d $MARIADB_DATADIR/mysql ]]; then
    say "initialising the MariaDB data directory"
    install -d -o mysql -g mysql -m 0755 "$MARIADB_DATADIR"
    mariadb-install-db --user=mysql --datadir="$MARIADB_DATADIR" --skip-test-db \
      --auth-root-authentication-method=socket >/dev/null
  fi
  if ! is_up mariadbd; then
    say "starting mariadbd"
    setsid /usr/sbin/mariadbd --user=mysql </dev/null >"$(start_log mariadbd)" 2>&1 9>&- &
  fi
  wait_until 30 mariadb_ping || fail "MariaDB does not answer mariadb-admin ping"
  # Idempotent; also repairs a changed password.
  mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS $DB_NAME;
    CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
    ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';" || fail "cannot create the accounting database"
}

start_slurmdbd() {
  if ! is_up slurmdbd; then
    say "starting slurmdbd"
    /usr/sbin/slurmdbd </dev/null >"$(start_log slurmdbd)" 2>&1 9>&- || fail "slurmdbd did not start"
  fi
  wait_until 30 tcp_open 6819 || fail "slurmdbd does not listen on 6819"
}

# Both clusters' associations as "cluster|account|user" lines, in ASSOCS (one sacctmgr call:
# each costs 0.2-0.4 s, the biggest part of an `up` when everything already runs). Fails while
# slurmdbd does not answer; a cluster that is not registered has no lines.
query_associations() {
  local clusters=$CLUSTER
  if duo_enabled; then clusters+=",$DUO_CLUSTER"; fi
  ASSOCS=$(sacctmgr -n -P show assoc cluster="$clusters" format=cluster,account,user 2>/dev/null)
}

# ensure_cluster NAME: slurmctld registers its cluster in slurmdbd by itself, but adding it first
# makes the root association (and so root's right to submit under AccountingStorageEnforce)
# exist before slurmctld loads the associations, on every Slurm version.
ensure_cluster() {
  local cluster=$1
  if [[ -z $ASSOCS ]]; then
    wait_until 15 query_associations || fail "sacctmgr cannot reach slurmdbd"
  fi
  if ! grep -q "^$cluster|root|" <<<"$ASSOCS"; then
    say "adding cluster $cluster to the accounting database"
    sacctmgr -i add cluster "$cluster" >/dev/null || fail "sacctmgr add cluster $cluster failed"
    query_associations || fail "sacctmgr show assoc failed"
  fi
}

slurmctld_answers() { timeout 5 scontrol ping | grep -q 'is UP'; }

start_slurmctld() {
  if ! is_up slurmctld; then
    say "starting slurmctld"
    /usr/sbin/slurmctld </dev/null >"$(start_log slurmctld)" 2>&1 9>&- || fail "slurmctld did not start"
  fi
  wait_until 30 slurmctld_answers || fail "slurmctld does not answer scontrol ping"
}

# ensure_associations CLUSTER: account 'research' with alice and bob, and root's own
# association (it comes with the cluster and must stay, or root could not submit). Under
# PrivateData=jobs in slurmdbd.conf a user without an association would not even see their own
# jobs in sacct.
ensure_associations() {
  local cluster=$1 user
  if ! grep -qx "$cluster|$ACCOUNT|" <<<"$ASSOCS"; then
    say "adding account $ACCOUNT on cluster $cluster"
    sacctmgr -i add account "$ACCOUNT" cluster="$cluster" description="nsml-hpc tests" organization=nsml >/dev/null
  fi
  for user in "${TEST_USERS[@]}"; do
    if ! grep -qx "$cluster|$ACCOUNT|$user" <<<"$ASSOCS"; then
      say "adding user $user to account $ACCOUNT on cluster $cluster"
      sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$cluster" >/dev/null
    fi
  done
  if ! grep -qx "$cluster|root|root" <<<"$ASSOCS"; then
    say "restoring root's association on cluster $cluster"
    sacctmgr -i add user root account=root cluster="$cluster" >/dev/null
  fi
}

start_slurmd() {
  if ! is_up slurmd; then
    say "starting slurmd"
    /usr/sbin/slurmd </dev/null >"$(start_log slurmd)" 2>&1 9>&- || fail "slurmd did not start"
  fi
}

start_sshd() {
  if ! is_up sshd; then
    say "starting sshd on $SSH_LISTEN:$SSH_PORT"
    /usr/sbin/sshd -f "$SSHD_CONFIG" -E "${LOGFILE[sshd]}" </dev/null >"$(start_log sshd)" 2>&1 9>&- \
      || fail "sshd did not start (check: /usr/sbin/sshd -t -f $SSHD_CONFIG)"
    # Probe only after a start: each probe leaves a "Connection closed" line in the sshd log.
    wait_until 10 tcp_open "$SSH_PORT" || fail "sshd does not listen on $SSH_PORT"
  fi
}

# cron daemonises and writes /run/crond.pid; it runs users' crontab lines in TZ=UTC (exported
# above). It logs to syslog only, and no syslog daemon runs here.
start_cron() {
  if ! is_up cron; then
    say "starting cron"
    /usr/sbin/cron </dev/null >"$(start_log cron)" 2>&1 9>&- || fail "cron did not start"
  fi
}

# Mark for a restart each running daemon of TZ_DAEMONS whose environment lacks TZ=UTC (started
# by hand or by an older version of this script), so the caller's zone never reaches the site.
restart_daemons_without_utc() {
  local name pid
  for name in "${TZ_DAEMONS[@]}"; do
    for pid in $(daemon_pids "$name"); do
      if ! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'TZ=UTC'; then
        say "$name (pid $pid) runs without TZ=UTC"
        CONFIG_CHANGED[$name]=1
      fi
    done
  done
}

# ---------------------------------------------------------------------------------------------
# Node readiness
# ---------------------------------------------------------------------------------------------
node_state() { timeout 10 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
node_gres() { timeout 10 sinfo -h -N -n "$NODE" -o '%G' 2>/dev/null | head -n1; }

# Usable = slurmctld schedules onto it; jobs may already be running on it.
state_is_usable() { [[ $1 =~ ^(idle|mixed|allocated|completing|planned)$ ]]; }

# Wait for the node; a node left drained/invalid by an earlier bad config gets one resume.
wait_for_node() {
  local deadline=$(( $(now_us) + READY_TIMEOUT * 1000000 )) state="" resumed=0
  while :; do
    state=$(node_state)
    if state_is_usable "$state"; then
      [[ $(node_gres) == *"gpu:$NODE_GPUS"* ]] || fail "node $NODE is $state but reports gres '$(node_gres)', not gpu:$NODE_GPUS"
      NODE_STATE=$state
      return 0
    fi
    if (( ! resumed )) && [[ $state =~ drain|inval|fail ]]; then
      resumed=1
      say "node $NODE is '$state'; resuming it once"
      if [[ $state == inval* ]]; then stop_daemon slurmd; start_slurmd; sleep 1; fi
      timeout 10 scontrol update nodename="$NODE" state=resume || true
    fi
    (( $(now_us) < deadline )) || fail "node $NODE not usable after ${READY_TIMEOUT}s (state '${state:-none}')"
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------
# The duo cluster: two slurmd, each in its own network + UTS namespace (so each node has its
# own address and hostname), on a bridge in the root namespace. `ip netns exec` cannot be used:
# it makes a new mount namespace and remounts /sys, and slurmd 22.05 then fails with "No
# filesystem mounted on /sys/fs/cgroup"; nsenter --net + unshare --uts keep the mounts.
# ---------------------------------------------------------------------------------------------
readonly DUO_UNAVAILABLE=$STATE_DIR/duo.unavailable

duo_enabled() { [[ $DUO_WANTED == 1 ]]; }

# Where namespaces cannot be made (an unprivileged container), skip the duo cluster with a
# warning instead of failing the whole sandbox; the reason stays in $DUO_UNAVAILABLE for status.
check_duo_possible() {
  local why
  rm -f "$DUO_UNAVAILABLE"
  if ! duo_enabled; then
    echo "disabled by NSML_SANDBOX_DUO=$DUO_WANTED" >"$DUO_UNAVAILABLE"
    return 0
  fi
  if ! why=$(unshare --net --uts true 2>&1); then
    warn "cannot make network namespaces here ($why); the duo cluster is skipped"
    echo "no network namespaces here: $why" >"$DUO_UNAVAILABLE"
    DUO_WANTED=0
  fi
}

# duo_addr NODE: the node's address inside its namespace (duo1 -> .11, duo2 -> .12).
duo_addr() { printf '%s.1%s' "$DUO_SUBNET" "${1#duo}"; }
readonly DUO_CTLD_ADDR=$DUO_SUBNET.1

# In the root namespace: the bridge with .1. In namespace duoN: lo, and eth0 (the far end of the
# veth pair veth-duoN, a port of the bridge) with .1N.
duo_network_ok() {
  local node
  ip -br addr show dev "$DUO_BRIDGE" 2>/dev/null | grep -q " $DUO_CTLD_ADDR/24" || return 1
  for node in "${DUO_NODES[@]}"; do
    [[ -e /run/netns/$node ]] || return 1
    ip -n "$node" -br addr show dev eth0 2>/dev/null | grep -q " $(duo_addr "$node")/24" || return 1
  done
}

duo_network_up() {
  local node
  duo_network_ok && return 0
  # Rebuild from scratch: a slurmd left in a stale namespace would not be reachable.
  stop_duo_nodes
  duo_network_down
  say "creating the duo network: bridge $DUO_BRIDGE $DUO_CTLD_ADDR/24, namespaces ${DUO_NODES[*]}"
  ip link add "$DUO_BRIDGE" type bridge
  ip addr add "$DUO_CTLD_ADDR/24" dev "$DUO_BRIDGE"
  ip link set "$DUO_BRIDGE" up
  for node in "${DUO_NODES[@]}"; do
    ip netns add "$node"
    ip link add "veth-$node" type veth peer name eth0 netns "$node"
    ip link set "veth-$node" master "$DUO_BRIDGE"
    ip link set "veth-$node" up
    ip -n "$node" link set lo up
    ip -n "$node" addr add "$(duo_addr "$node")/24" dev eth0
    ip -n "$node" link set eth0 up
  done
  duo_network_ok || fail "the duo network is not as expected after creating it"
}

# Kill what still runs in a node's namespace (job steps, user processes), then remove the
# namespaces (their eth0 takes the veth pair with it) and the bridge.
duo_network_down() {
  local node pids
  for node in "${DUO_NODES[@]}"; do
    if [[ -e /run/netns/$node ]]; then
      pids=$(ip netns pids "$node" 2>/dev/null | tr '\n' ' ')
      if [[ -n ${pids// /} ]]; then
        say "killing what still runs in namespace $node ($pids)"
        # shellcheck disable=SC2086  # a list of numbers
        kill -KILL $pids 2>/dev/null || true
      fi
      ip netns del "$node" 2>/dev/null || warn "could not remove network namespace $node"
    fi
    ip link del "veth-$node" 2>/dev/null || true
  done
  ip link del "$DUO_BRIDGE" 2>/dev/null || true
}

prepare_duo_directories() {
  local node
  install -d -o slurm -g slurm -m 0755 "$DUO_STATE" "$DUO_STATE/slurmctld" "$DUO_LOG_DIR" "$DUO_RUN"
  install -d -o root -g root -m 0755 "$DUO_ETC" "$DUO_FAKEGPU_DIR" "$DUO_STATE/slurmd"
  for node in "${DUO_NODES[@]}"; do
    install -d -o root -g root -m 0755 "$DUO_STATE/slurmd/$node"
  done
}

# Four fake GPUs (character devices, like nsml's), two per node. Prints the gres.conf lines.
make_duo_fake_gpus() {
  local i dev ok=1 total=$(( ${#DUO_NODES[@]} * DUO_GPUS_PER_NODE )) first n=0 node
  local fallback=(/dev/null /dev/zero /dev/full /dev/urandom)
  for (( i = 0; i < total; i++ )); do
    dev=$DUO_FAKEGPU_DIR/gpu$i
    [[ -c $dev ]] && continue
    rm -f "$dev"
    mknod -m 666 "$dev" c 195 "$i" 2>/dev/null || { ok=0; break; }
  done
  for node in "${DUO_NODES[@]}"; do
    first=$(( n * DUO_GPUS_PER_NODE ))
    if (( ok )); then
      echo "NodeName=$node Name=gpu Type=$DUO_GPU_TYPE File=$DUO_FAKEGPU_DIR/gpu[$first-$(( first + DUO_GPUS_PER_NODE - 1 ))]"
    else
      for (( i = first; i < first + DUO_GPUS_PER_NODE; i++ )); do
        echo "NodeName=$node Name=gpu Type=$DUO_GPU_TYPE File=${fallback[i % ${#fallback[@]}]}"
      done
    fi
    n=$(( n + 1 ))
  done
}

write_duo_config() {
  local gres_lines=$1 node nodes_conf="" restart=(duo-slurmctld)
  for node in "${DUO_NODES[@]}"; do
    restart+=("duo-slurmd-$node")
    nodes_conf+="NodeName=$node NodeAddr=$(duo_addr "$node") CPUs=$DUO_NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$DUO_NODE_CPUS ThreadsPerCore=1 RealMemory=$DUO_NODE_MEMORY_MB Gres=gpu:$DUO_GPU_TYPE:$DUO_GPUS_PER_NODE State=UNKNOWN"$'\n'
  done
  write_file "$DUO_CONF" 0644 root:root "${restart[@]}" <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
# Cluster $DUO_CLUSTER: ${#DUO_NODES[@]} nodes in network namespaces, $DUO_GPUS_PER_NODE fake GPUs each (type $DUO_GPU_TYPE).
# Clients: SLURM_CONF=$DUO_CONF sbatch ... (or -M $DUO_CLUSTER for sacct/squeue/sbatch).
ClusterName=$DUO_CLUSTER
SlurmctldHost=$NODE($DUO_CTLD_ADDR)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=$DUO_CTLD_PORT
SlurmdPort=$DUO_SLURMD_PORT
StateSaveLocation=$DUO_STATE/slurmctld
SlurmdSpoolDir=$DUO_STATE/slurmd/%n
SlurmctldPidFile=${PIDFILE[duo-slurmctld]}
SlurmdPidFile=$DUO_RUN/slurmd-%n.pid
SlurmctldLogFile=${LOGFILE[duo-slurmctld]}
SlurmdLogFile=$DUO_LOG_DIR/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DUO_ETC/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
KillWait=5
InactiveLimit=0
MinJobAge=300
JobRequeue=1
# nsml's slurmdbd, reached on the bridge address: it listens on every address, and jobs inside
# the nodes' namespaces (where 127.0.0.1 is their own loopback) can run sacct too.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$DUO_CTLD_ADDR
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations
JobCompType=jobcomp/none
PrivateData=jobs
SlurmdParameters=config_overrides
${nodes_conf}PartitionName=$DUO_PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  write_file "$DUO_ETC/gres.conf" 0644 root:root "${restart[@]}" <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
AutoDetect=off
$gres_lines
EOF
  write_file "$DUO_ETC/plugstack.conf" 0644 root:root "${restart[@]}" </dev/null
  if (( SLURM_MAJOR >= 24 )); then
    write_file "$DUO_ETC/cgroup.conf" 0644 root:root "${restart[@]}" <<EOF
# Written by nsml-hpc sandbox/slurm-sandbox.sh; rewritten on every 'up'.
CgroupPlugin=disabled
EOF
  fi
}

# Runs a Slurm client against the duo cluster.
duo_client() { SLURM_CONF=$DUO_CONF timeout 10 "$@"; }

duo_ctld_answers() { duo_client scontrol ping | grep -q 'is UP'; }

start_duo_slurmctld() {
  if ! is_up duo-slurmctld; then
    say "starting slurmctld of cluster $DUO_CLUSTER ($DUO_CTLD_ADDR:$DUO_CTLD_PORT)"
    SLURM_CONF=$DUO_CONF /usr/sbin/slurmctld -f "$DUO_CONF" </dev/null >"$(start_log duo-slurmctld)" 2>&1 9>&- \
      || fail "slurmctld of cluster $DUO_CLUSTER did not start"
  fi
  wait_until 30 duo_ctld_answers || fail "slurmctld of cluster $DUO_CLUSTER does not answer scontrol ping"
}

# slurmd in the node's namespaces: `hostname` there is the node's name; slurmd daemonises and
# keeps both namespaces, and so do the job steps it starts.
start_duo_slurmd() {
  local node=$1 key=duo-slurmd-$1
  is_up "$key" && return 0
  say "starting slurmd $node ($(duo_addr "$node"):$DUO_SLURMD_PORT, in namespace $node)"
  # shellcheck disable=SC2016  # $1/$2 are for the inner sh
  SLURM_CONF=$DUO_CONF nsenter --net="/run/netns/$node" unshare --uts \
    sh -c 'hostname "$1" && exec /usr/sbin/slurmd -f "$2" -N "$1"' sh "$node" "$DUO_CONF" \
    </dev/null >"$(start_log "$key")" 2>&1 9>&- || fail "slurmd $node did not start"
}

stop_duo_nodes() {
  local node
  for node in "${DUO_NODES[@]}"; do stop_daemon "duo-slurmd-$node"; done
}

# "node state gres" for each duo node.
duo_nodes_sinfo() { duo_client sinfo -h -N -o '%N %T %G' 2>/dev/null | sort -u; }

# Like wait_for_node, for both duo nodes: usable with their GPUs; one resume for a bad state.
wait_for_duo_nodes() {
  local deadline=$(( $(now_us) + READY_TIMEOUT * 1000000 )) lines node state gres ready resumed=0
  while :; do
    lines=$(duo_nodes_sinfo)
    ready=0
    for node in "${DUO_NODES[@]}"; do
      read -r _ state gres < <(grep "^$node " <<<"$lines" || echo "$node none none")
      if state_is_usable "$state"; then
        [[ $gres == *"gpu:$DUO_GPU_TYPE:$DUO_GPUS_PER_NODE"* ]] || fail "duo node $node is $state but reports gres '$gres'"
        ready=$(( ready + 1 ))
      elif (( ! resumed )) && [[ $state =~ drain|inval|fail ]]; then
        resumed=1
        say "duo node $node is '$state'; resuming it once"
        if [[ $state == inval* ]]; then stop_daemon "duo-slurmd-$node"; start_duo_slurmd "$node"; sleep 1; fi
        duo_client scontrol update nodename="$node" state=resume || true
      fi
    done
    (( ready == ${#DUO_NODES[@]} )) && return 0
    (( $(now_us) < deadline )) || fail "duo nodes not usable after ${READY_TIMEOUT}s: $(tr '\n' ';' <<<"$lines")"
    sleep 0.2
  done
}

# The whole duo cluster, once nsml's munge and slurmdbd run.
duo_up() {
  local node
  duo_network_up
  ensure_cluster "$DUO_CLUSTER"
  start_duo_slurmctld
  ensure_associations "$DUO_CLUSTER"
  for node in "${DUO_NODES[@]}"; do start_duo_slurmd "$node"; done
}

duo_down() {
  stop_duo_nodes
  stop_daemon duo-slurmctld
  duo_network_down
}

# ---------------------------------------------------------------------------------------------
# Sub-commands
# ---------------------------------------------------------------------------------------------
cmd_install() {
  require_root
  install_packages
}

cmd_up() {
  require_root
  local t0 gres_lines duo_summary="duo=skipped"
  t0=$(now_us)
  take_lock
  install_packages
  detect_environment
  check_duo_possible
  ensure_names_resolve
  prepare_directories
  gres_lines=$(make_fake_gpus)
  write_mariadb_config
  write_slurmdbd_config
  write_slurm_config "$gres_lines"
  write_sshd_config
  ensure_test_users
  write_known_hosts
  write_site_modules
  if duo_enabled; then
    prepare_duo_directories
    gres_lines=$(make_duo_fake_gpus)
    write_duo_config "$gres_lines"
  fi
  restart_daemons_without_utc

  # A changed slurm.conf/gres.conf needs both slurmctld and slurmd restarted (GRES and
  # AccountingStorageEnforce are not picked up by `scontrol reconfigure`).
  restart_if_config_changed cron sshd "${DUO_DAEMONS[@]}" slurmd slurmctld slurmdbd mariadbd
  start_munged
  start_mariadbd
  start_slurmdbd
  ensure_cluster "$CLUSTER"
  start_slurmctld
  ensure_associations "$CLUSTER"
  start_slurmd
  start_sshd
  start_cron
  if duo_enabled; then duo_up; fi
  wait_for_node
  if duo_enabled; then
    wait_for_duo_nodes
    duo_summary="duo=$(IFS=,; echo "${DUO_NODES[*]}")(gpu:$DUO_GPU_TYPE:$DUO_GPUS_PER_NODE/node,SLURM_CONF=$DUO_CONF)"
  fi
  exec 9>&-   # release the lock: `run` stays in the foreground after this

  say "ready: cluster=$CLUSTER node=$NODE state=$NODE_STATE gres=gpu:$NODE_GPUS cpus=$NODE_CPUS" \
      "$duo_summary slurm=$SLURM_VERSION ssh=$SSH_LISTEN:$SSH_PORT in $(elapsed_since "$t0")s"
}

cmd_down() {
  require_root
  local i t0
  t0=$(now_us)
  take_lock
  # The duo cluster first: its slurmctld sends its last records to slurmdbd.
  duo_down
  for (( i = ${#DAEMONS[@]} - 1; i >= 0; i-- )); do
    stop_daemon "${DAEMONS[i]}"
  done
  say "all daemons stopped in $(elapsed_since "$t0")s"
}

# status_daemons NAME...: one line per daemon; returns 1 if one is down.
status_daemons() {
  local name pids ok=0
  for name in "$@"; do
    pids=$(daemon_pids "$name" | tr '\n' ' ')
    if [[ -n $pids ]]; then
      printf 'sandbox: %-16s up   (pid %s)\n' "$name" "${pids% }"
    else
      printf 'sandbox: %-16s DOWN\n' "$name"
      ok=1
    fi
  done
  return "$ok"
}

cmd_status() {
  local ok=0 line node state
  status_daemons "${DAEMONS[@]}" || ok=1
  NODE=$(hostname -s 2>/dev/null || uname -n); NODE=${NODE%%.*}
  if is_up slurmctld && line=$(timeout 10 sinfo -h -N -n "$NODE" -o '%N %P %T cpus=%c gres=%G' 2>&1) && [[ -n $line ]]; then
    printf 'sandbox: sinfo %-10s %s\n' "$CLUSTER" "${line//$'\n'/$'\n'sandbox: sinfo            }"
    state_is_usable "$(awk 'NR == 1 {print $3}' <<<"$line")" || ok=1
  else
    printf 'sandbox: sinfo %-10s unavailable\n' "$CLUSTER"
    ok=1
  fi
  if [[ -s $DUO_UNAVAILABLE ]]; then
    printf 'sandbox: cluster %s skipped: %s\n' "$DUO_CLUSTER" "$(cat "$DUO_UNAVAILABLE")"
    return "$ok"
  fi
  status_daemons "${DUO_DAEMONS[@]}" || ok=1
  if duo_network_ok; then
    printf 'sandbox: %-16s up   (bridge %s %s/24, namespaces %s)\n' duo-network "$DUO_BRIDGE" "$DUO_CTLD_ADDR" "${DUO_NODES[*]}"
  else
    printf 'sandbox: %-16s DOWN\n' duo-network
    ok=1
  fi
  if is_up duo-slurmctld && line=$(duo_client sinfo -h -N -o '%N %P %T cpus=%c gres=%G' 2>&1) && [[ -n $line ]]; then
    for node in "${DUO_NODES[@]}"; do
      state=$(awk -v n="$node" '$1 == n {print $3; exit}' <<<"$line")
      state_is_usable "$state" || ok=1
    done
    printf 'sandbox: sinfo %-10s %s\n' "$DUO_CLUSTER" "${line//$'\n'/$'\n'sandbox: sinfo            }"
  else
    printf 'sandbox: sinfo %-10s unavailable\n' "$DUO_CLUSTER"
    ok=1
  fi
  return "$ok"
}

cmd_logs() {
  show_logs "${1:-30}"
}

# For tests of "accounting is down, the controller answers": stop slurmdbd only. slurmctld
# keeps scheduling and queues its accounting records; sacct/sacctmgr fail until dbd-start (or
# any `up`, which starts whatever is down). Both clusters lose accounting meanwhile.
cmd_dbd_stop() {
  require_root
  take_lock
  stop_daemon slurmdbd
  say "slurmdbd stopped; 'slurm-sandbox.sh dbd-start' or 'up' starts it again"
}

cmd_dbd_start() {
  require_root
  local t0
  t0=$(now_us)
  take_lock
  start_slurmdbd
  wait_until 30 query_associations || fail "slurmdbd does not answer sacctmgr"
  say "slurmdbd answers again in $(elapsed_since "$t0")s"
}

# Is there an NFS mount at $NFS_MOUNT_DIR? If not, print why not (a test's skip reason) and
# return 3. Nothing in this script mounts one: the development machine's kernel (6.18, built
# without modules) has neither NFS client nor server. Measured there: no 'nfs'/'nfsd' in
# /proc/filesystems; nfs-kernel-server's rpc.nfsd: "Unable to access /proc/fs/nfsd errno 2";
# `mount -t nfsd nfsd /proc/fs/nfsd`: "unknown filesystem type 'nfsd'"; with the userspace
# server nfs-ganesha serving an export (libnfs's nfs-ls lists it), `mount -t nfs` and
# `mount -t nfs4` of it: "No such device".
cmd_nfs_check() {
  local missing=() fs
  if [[ $(findmnt -n -o FSTYPE --target "$NFS_MOUNT_DIR" 2>/dev/null) == nfs* ]]; then
    echo "sandbox: $NFS_MOUNT_DIR is an NFS mount"
    return 0
  fi
  for fs in nfs nfsd; do
    grep -qw "$fs" /proc/filesystems || missing+=("$fs")
  done
  if (( ${#missing[@]} )); then
    local modules="and cannot load modules (no /proc/modules)"
    [[ -r /proc/modules ]] && modules="(modules not loaded)"
    echo "sandbox: no NFS mount at $NFS_MOUNT_DIR: kernel $(uname -r) has no ${missing[*]} filesystem" \
         "in /proc/filesystems $modules; 'mount -t nfs' fails with 'No such device' even against a" \
         "userspace NFS server"
  else
    echo "sandbox: no NFS mount at $NFS_MOUNT_DIR: the kernel has NFS, but slurm-sandbox.sh does not" \
         "set up an export yet (it was written on a kernel without NFS)"
  fi
  return 3
}

# Foreground mode for containers: up, then sleep until TERM/INT, then down.
cmd_run() {
  cmd_up
  local sleeper=""
  trap 'say "signal received; stopping"; kill "$sleeper" 2>/dev/null; cmd_down; exit 0' TERM INT
  say "running in the foreground; send SIGTERM to stop"
  # `wait` (unlike a plain sleep) returns as soon as a signal arrives, so the trap runs at once.
  while :; do
    sleep 5 &
    sleeper=$!
    wait "$sleeper" || true
  done
}

usage() {
  cat <<'EOF'
usage: slurm-sandbox.sh COMMAND
  install    apt-get install the missing packages
  up         install, write configs, start what is down, wait until the nodes are usable
  run        up, then stay in the foreground until SIGTERM/SIGINT, then down
  down       stop all sandbox daemons, remove the duo cluster's namespaces and bridge
  status     show daemons and nodes of both clusters; exit 0 only if everything is usable
  logs [N]   print the last N (default 30) lines of every daemon log
  dbd-stop   stop slurmdbd only (slurmctld keeps answering); dbd-start or up restarts it
  dbd-start  start slurmdbd and wait until sacctmgr answers
  nfs-check  exit 0 if an NFS mount is at /mnt/nsml-nfs, else print why not and exit 3
EOF
}

main() {
  local cmd=${1:-help}
  shift || true
  case $cmd in
    install) cmd_install ;;
    up)
      if [[ ${NSML_SANDBOX_FOREGROUND:-0} == 1 ]]; then cmd_run; else cmd_up; fi ;;
    run) cmd_run ;;
    down) cmd_down ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    dbd-stop) cmd_dbd_stop ;;
    dbd-start) cmd_dbd_start ;;
    nfs-check) cmd_nfs_check ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
