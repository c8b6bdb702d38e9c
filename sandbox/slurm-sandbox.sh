#!/usr/bin/env bash
# slurm-sandbox.sh — a real one-node Slurm cluster for nsml-hpc's integration tests.
#
# Brings up munge + MariaDB + slurmdbd + slurmctld + slurmd + an sshd on 127.0.0.1:2222 on a
# Debian machine WITHOUT systemd (CI machines, containers). Every config file is written here,
# from heredocs, so this script is the single source of truth for the cluster; the Docker image
# (sandbox/Dockerfile) runs this same script.
#
#   slurm-sandbox.sh install   apt-get install the missing Debian packages (nothing else)
#   slurm-sandbox.sh up        install, write configs, start what is down, wait for the node
#   slurm-sandbox.sh run       up, then stay in the foreground until SIGTERM/SIGINT, then down
#   slurm-sandbox.sh down      stop every sandbox daemon and wait until they are gone
#   slurm-sandbox.sh status    daemons up/down + the node's sinfo line; exit 0 only if usable
#   slurm-sandbox.sh logs [N]  last N (default 30) lines of every daemon log
#
# Environment:
#   NSML_SANDBOX_FOREGROUND=1     make `up` behave like `run` (for container entrypoints)
#   NSML_SANDBOX_SSH_LISTEN=ADDR  sshd listen address (default 127.0.0.1; the image uses 0.0.0.0
#                                 because Docker forwards published ports to the container's eth0)
#   NSML_SANDBOX_TIMEOUT=SECONDS  how long `up` waits for the node to become usable (default 60)
#
# Works on Debian 12 (Slurm 22.05) and Debian 13 (Slurm 24.11); see docs/sandbox.md.
set -euo pipefail

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
                   openssh-server openssh-client procps)

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

# Daemons in start order. Each has the process name it runs under (/proc/PID/comm), its pid
# file and its log file; stop order is the reverse.
readonly DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd sshd)
declare -A PIDFILE=(
  [munged]=/run/munge/munged.pid
  [mariadbd]=/run/mysqld/mysqld.pid
  [slurmdbd]=/run/slurmdbd.pid
  [slurmctld]=/run/slurmctld.pid
  [slurmd]=/run/slurmd.pid
  [sshd]=/run/sshd-$SSH_PORT.pid
)
declare -A LOGFILE=(
  [munged]=/var/log/munge/munged.log
  [mariadbd]=/var/log/mysql/error.log
  [slurmdbd]=/var/log/slurm/slurmdbd.log
  [slurmctld]=/var/log/slurm/slurmctld.log
  [slurmd]=/var/log/slurm/slurmd.log
  [sshd]=/var/log/sshd-$SSH_PORT.log
)
readonly PIDFILE LOGFILE

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
  for name in "${DAEMONS[@]}"; do
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

# Print the live pids of daemon NAME: the one in its pid file, and any other process with its
# name (a daemon whose pid file was lost still counts). sshd is matched by its config path only,
# so that a system sshd on port 22 is never touched.
daemon_pids() {
  local name=$1 pid
  local -A seen=()
  if [[ -r ${PIDFILE[$name]} ]]; then
    pid=$(tr -dc '0-9' <"${PIDFILE[$name]}")
    if pid_is_live "$pid" "$name"; then seen[$pid]=1; fi
  fi
  if [[ $name == sshd ]]; then
    for pid in $(pgrep -f -- "-f $SSHD_CONFIG" || true); do
      if pid_is_live "$pid" sshd; then seen[$pid]=1; fi
    done
  else
    for pid in $(pgrep -x -- "$name" || true); do
      if pid_is_live "$pid" "$name"; then seen[$pid]=1; fi
    done
  fi
  if (( ${#seen[@]} )); then printf '%s\n' "${!seen[@]}"; fi
}

is_up() { [[ -n $(daemon_pids "$1") ]]; }

# all_gone NAME PID...: true once none of the pids is a live NAME process.
all_gone() {
  local name=$1 pid; shift
  for pid in "$@"; do
    if pid_is_live "$pid" "$name"; then return 1; fi
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
package_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

install_packages() {
  local missing=() pkg added_policy=0
  for pkg in "${PACKAGES[@]}"; do
    package_installed "$pkg" || missing+=("$pkg")
  done
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
# "localhost" (AccountingStorageHost); a bare chroot may have no /etc/hosts at all.
ensure_names_resolve() {
  local name
  for name in localhost "$NODE"; do
    if ! getent hosts "$name" >/dev/null; then
      say "adding '127.0.0.1 $name' to /etc/hosts"
      printf '127.0.0.1 %s\n' "$name" >>/etc/hosts
    fi
  done
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

# The cluster's associations as "account|user" lines, in ASSOCS (one sacctmgr call: each costs
# 0.2-0.4 s, the biggest part of an `up` when everything already runs). Fails while slurmdbd
# does not answer; empty when the cluster is not registered.
query_associations() {
  ASSOCS=$(sacctmgr -n -P show assoc cluster="$CLUSTER" format=account,user 2>/dev/null)
}

# slurmctld registers its cluster in slurmdbd by itself, but adding it first makes the root
# association (and so root's right to submit under AccountingStorageEnforce) exist before
# slurmctld loads the associations, on every Slurm version.
ensure_cluster() {
  wait_until 15 query_associations || fail "sacctmgr cannot reach slurmdbd"
  if ! grep -q '^root|' <<<"$ASSOCS"; then
    say "adding cluster $CLUSTER to the accounting database"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster $CLUSTER failed"
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

# Account 'research' with alice and bob. Needs the cluster in slurmdbd; root's own association
# comes with the cluster and must stay, or root could not submit.
ensure_associations() {
  local assocs=$ASSOCS user
  if ! grep -qx "$ACCOUNT|" <<<"$assocs"; then
    say "adding account $ACCOUNT"
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="nsml-hpc tests" organization=nsml >/dev/null
  fi
  for user in "${TEST_USERS[@]}"; do
    if ! grep -qx "$ACCOUNT|$user" <<<"$assocs"; then
      say "adding user $user to account $ACCOUNT"
      sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
    fi
  done
  if ! grep -qx "root|root" <<<"$assocs"; then
    say "restoring root's association"
    sacctmgr -i add user root account=root cluster="$CLUSTER" >/dev/null
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
# Sub-commands
# ---------------------------------------------------------------------------------------------
cmd_install() {
  require_root
  install_packages
}

cmd_up() {
  require_root
  local t0 gres_lines
  t0=$(now_us)
  take_lock
  install_packages
  detect_environment
  ensure_names_resolve
  prepare_directories
  gres_lines=$(make_fake_gpus)
  write_mariadb_config
  write_slurmdbd_config
  write_slurm_config "$gres_lines"
  write_sshd_config
  ensure_test_users
  write_known_hosts

  # A changed slurm.conf/gres.conf needs both slurmctld and slurmd restarted (GRES and
  # AccountingStorageEnforce are not picked up by `scontrol reconfigure`).
  restart_if_config_changed sshd slurmd slurmctld slurmdbd mariadbd
  start_munged
  start_mariadbd
  start_slurmdbd
  ensure_cluster
  start_slurmctld
  ensure_associations
  start_slurmd
  start_sshd
  wait_for_node
  exec 9>&-   # release the lock: `run` stays in the foreground after this

  say "ready: cluster=$CLUSTER node=$NODE state=$NODE_STATE gres=gpu:$NODE_GPUS cpus=$NODE_CPUS" \
      "slurm=$SLURM_VERSION ssh=$SSH_LISTEN:$SSH_PORT in $(elapsed_since "$t0")s"
}

cmd_down() {
  require_root
  local i t0
  t0=$(now_us)
  take_lock
  for (( i = ${#DAEMONS[@]} - 1; i >= 0; i-- )); do
    stop_daemon "${DAEMONS[i]}"
  done
  say "all daemons stopped in $(elapsed_since "$t0")s"
}

cmd_status() {
  local name pids ok=0 line
  for name in "${DAEMONS[@]}"; do
    pids=$(daemon_pids "$name" | tr '\n' ' ')
    if [[ -n $pids ]]; then
      printf 'sandbox: %-10s up   (pid %s)\n' "$name" "${pids% }"
    else
      printf 'sandbox: %-10s DOWN\n' "$name"
      ok=1
    fi
  done
  NODE=$(hostname -s 2>/dev/null || uname -n); NODE=${NODE%%.*}
  if is_up slurmctld && line=$(timeout 10 sinfo -h -N -n "$NODE" -o '%N %P %T cpus=%c gres=%G' 2>&1) && [[ -n $line ]]; then
    printf 'sandbox: sinfo      %s\n' "$line"
    state_is_usable "$(awk '{print $3}' <<<"$line")" || ok=1
  else
    printf 'sandbox: sinfo      unavailable\n'
    ok=1
  fi
  return "$ok"
}

cmd_logs() {
  show_logs "${1:-30}"
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
  install   apt-get install the missing packages
  up        install, write configs, start what is down, wait until the node is usable
  run       up, then stay in the foreground until SIGTERM/SIGINT, then down
  down      stop all sandbox daemons
  status    show daemons and the node; exit 0 only if everything is up and usable
  logs [N]  print the last N (default 30) lines of every daemon log
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
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
