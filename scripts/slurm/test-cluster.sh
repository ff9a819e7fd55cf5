#!/usr/bin/env bash
# A real Slurm 22.05 test cluster on this machine, on loopback only: one slurmctld and
# N slurmd (n1..nN, all NodeAddr=127.0.0.1, one port each), as root, without systemd.
#
#   test-cluster.sh up                 install (if missing), configure, start; wait until all nodes are idle
#   test-cluster.sh down               stop every daemon of the cluster and wipe its state
#   test-cluster.sh status             print sinfo; exit 0 iff every node is up
#   test-cluster.sh env                print SLURM_CONF=... (also the last stdout line of `up`)
#   test-cluster.sh restart-node NAME  stop NAME's slurmd (TERM, then KILL) and start it again; wait until NAME is up
#   test-cluster.sh kill-node NAME     kill -9 NAME's slurmd only (its slurmstepd and tasks keep running)
#   test-cluster.sh crash-node NAME    kill -9 NAME's slurmd, its slurmstepd and every task under them (a lost host)
#
# Environment: SLURMPOOL_TEST_NODES (3), SLURMPOOL_TEST_CPUS (2, per node), SLURMPOOL_TEST_GPUS (2 stand-in
# GPUs per node: gres gpu over device files /dev/slurmpool-fake-gpuK that this script creates), SLURMPOOL_TEST_TIMEOUT
# (30 s, for every wait), SLURMPOOL_TEST_CTLD_PORT (16817), SLURMPOOL_TEST_NODE_PORT (17001, n1's port),
# SLURMPOOL_TEST_STATE (/var/spool/slurmpool-test), SLURMPOOL_TEST_CONF (/etc/slurm/slurm.conf).
# Progress goes to stderr; stdout carries only the SLURM_CONF= line and the sinfo table of `status`.
# See docs/test-cluster.md.
set -euo pipefail

NODES=${SLURMPOOL_TEST_NODES:-3}
CPUS=${SLURMPOOL_TEST_CPUS:-2}
GPUS=${SLURMPOOL_TEST_GPUS:-2}
TIMEOUT=${SLURMPOOL_TEST_TIMEOUT:-30}
CTLD_PORT0=${SLURMPOOL_TEST_CTLD_PORT:-16817}
NODE_PORT0=${SLURMPOOL_TEST_NODE_PORT:-17001}
BASE=${SLURMPOOL_TEST_STATE:-/var/spool/slurmpool-test}
# The default location, so that plain sbatch/srun/scontrol work in any shell. Another path (with its own
# SLURMPOOL_TEST_STATE and ports) runs a second, separate cluster; its clients then need SLURM_CONF.
CONF=${SLURMPOOL_TEST_CONF:-/etc/slurm/slurm.conf}
MARK=slurmpool-test
# Every daemon we start carries this variable; slurmstepd inherits it from its slurmd.
TAG=SLURMPOOL_TESTCLUSTER_DAEMON
LOCK=$BASE.lock
# Clients of this script and everything it runs use the file we write, never a configless (DNS) lookup.
export SLURM_CONF=$CONF
export DEBIAN_FRONTEND=noninteractive

T0=${EPOCHREALTIME/./}
die() { printf 'test-cluster: error: %s\n' "$*" >&2; exit 1; }
log() { local t=${EPOCHREALTIME/./}; printf '[test-cluster +%d.%03ds] %s\n' $(((t - T0) / 1000000)) $(((t - T0) / 1000 % 1000)) "$*" >&2; }

[[ $NODES =~ ^[1-9][0-9]?$ ]] || die "SLURMPOOL_TEST_NODES must be an integer in 1..99, got '$NODES'"
[[ $CPUS =~ ^[1-9][0-9]{0,2}$ ]] || die "SLURMPOOL_TEST_CPUS must be an integer in 1..999, got '$CPUS'"
[[ $GPUS =~ ^[0-9]$ ]] || die "SLURMPOOL_TEST_GPUS must be an integer in 0..9, got '$GPUS'"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "SLURMPOOL_TEST_TIMEOUT must be a positive integer (seconds), got '$TIMEOUT'"
[[ $CTLD_PORT0 =~ ^[0-9]+$ && $CTLD_PORT0 -ge 1024 && $CTLD_PORT0 -le 64000 ]] || die "SLURMPOOL_TEST_CTLD_PORT must be in 1024..64000, got '$CTLD_PORT0'"
[[ $NODE_PORT0 =~ ^[0-9]+$ && $NODE_PORT0 -ge 1024 && $NODE_PORT0 -le 64000 ]] || die "SLURMPOOL_TEST_NODE_PORT must be in 1024..64000, got '$NODE_PORT0'"
[[ $BASE == /* && $BASE != / ]] || die "SLURMPOOL_TEST_STATE must be an absolute path other than /, got '$BASE'"
[[ $CONF == /* ]] || die "SLURMPOOL_TEST_CONF must be an absolute path, got '$CONF'"

node_names() { local i; for ((i = 1; i <= NODES; i++)); do printf 'n%d ' "$i"; done; }
node_range() { if ((NODES == 1)); then printf 'n1'; else printf 'n[1-%d]' "$NODES"; fi; }
# Bump the version when the layout or the way daemons are started changes: `up` then restarts a running cluster.
HEADER="# $MARK v4 nodes=$NODES cpus=$CPUS gpus=$GPUS state=$BASE (written by scripts/slurm/test-cluster.sh)"

# ---------------------------------------------------------------- processes
# (No forks here: a fork costs 30-60 ms on a busy 2-core machine, and `up` of a healthy cluster should be quick.)
# True if PID runs and is not a zombie (state from /proc/PID/stat, after the last ')'): PID 1 here reaps
# late, so `kill -0` still finds a dead daemon.
alive() {
  local s=""
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || [[ -n $s ]] || return 1
  s=${s##*) }
  s=${s%% *}
  [[ -n $s && $s != Z && $s != X ]]
}
# alive and its command name is $2
alive_as() {
  local c=""
  alive "$1" || return 1
  { read -r c <"/proc/$1/comm"; } 2>/dev/null || true
  [[ $c == "$2" ]]
}
# REPLY := the PID in file $1, or empty.
pid_in() {
  REPLY=""
  { read -r REPLY <"$1"; } 2>/dev/null || true
  [[ $REPLY =~ ^[0-9]+$ ]] || REPLY=""
}
ctld_alive() { pid_in "$BASE/run/slurmctld.pid"; CTLD_PID=$REPLY; alive_as "$CTLD_PID" slurmctld; }
slurmd_alive() { pid_in "$BASE/run/slurmd-$1.pid"; SLURMD_PID=$REPLY; alive_as "$SLURMD_PID" slurmd; }

# PIDs of live processes whose environment has $TAG=$1 (exactly), i.e. daemons we started and their slurmstepd.
tagged_pids() {
  local f p
  while read -r f; do
    p=${f#/proc/}; p=${p%/environ}
    alive "$p" && printf '%s\n' "$p"
  done < <(grep -lzxF "$TAG=$1" /proc/[0-9]*/environ 2>/dev/null || true)
  return 0
}
# The given PIDs and all their live descendants (from /proc/*/stat parent ids; no procps needed).
with_descendants() {
  local -A kids=()
  local f s pid ppid
  for f in /proc/[0-9]*/stat; do
    { read -r s <"$f"; } 2>/dev/null || continue
    pid=${s%% *}; s=${s##*) }; s=${s#* }; ppid=${s%% *}
    kids[$ppid]+="$pid "
  done 2>/dev/null
  local -a queue=("$@") out=()
  local -A seen=()
  while ((${#queue[@]})); do
    pid=${queue[0]}; queue=("${queue[@]:1}")
    [[ -n ${seen[$pid]:-} ]] && continue
    seen[$pid]=1; out+=("$pid")
    for ppid in ${kids[$pid]:-}; do queue+=("$ppid"); done
  done
  ((${#out[@]})) && printf '%s\n' "${out[@]}"
  return 0
}
# Wait (bounded) until none of the PIDs is alive; returns 1 on timeout.
wait_gone() {
  local secs=$1; shift
  local deadline=$((${EPOCHREALTIME/./} + secs * 1000000)) n=0 p any
  while ((n++ < secs * 20 + 1)); do
    any=0
    for p in "$@"; do alive "$p" && { any=1; break; }; done
    ((any == 0)) && return 0
    ((${EPOCHREALTIME/./} > deadline)) && return 1
    sleep 0.05
  done
  return 1
}
# TERM the PIDs, wait up to $1 s, then KILL whatever is left and wait again (bounded).
terminate() {
  local secs=$1; shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  wait_gone "$secs" "$@" && return 0
  local p left=()
  for p in "$@"; do alive "$p" && left+=("$p"); done
  log "still alive after SIGTERM + ${secs}s, sending SIGKILL: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null || true
  wait_gone 5 "${left[@]}" || die "processes survived SIGKILL: ${left[*]}"
}

# ---------------------------------------------------------------- ports (no ss/netstat needed)
# LISTENING[port] := 1 for every TCP port in state LISTEN (from /proc/net/tcp{,6}, in bash: no fork).
scan_listening() {
  declare -gA LISTENING=()
  local f _sl addr _rem st _rest
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    {
      read -r _rest || true
      while read -r _sl addr _rem st _rest; do
        if [[ $st == 0A ]]; then LISTENING[$((16#${addr##*:}))]=1; fi
      done
    } <"$f"
  done
}
listening() { scan_listening; [[ -n ${LISTENING[$1]:-} ]]; }
pick_ports() {
  local i try busy
  scan_listening
  CTLD_PORT=$CTLD_PORT0
  for ((try = 0; try < 50; try++)); do [[ -n ${LISTENING[$CTLD_PORT]:-} ]] || break; CTLD_PORT=$((CTLD_PORT + 1)); done
  [[ -z ${LISTENING[$CTLD_PORT]:-} ]] || die "no free slurmctld port in $CTLD_PORT0..$CTLD_PORT"
  NODE_PORT=$NODE_PORT0
  for ((try = 0; try < 50; try++)); do
    busy=0
    for ((i = 0; i < NODES; i++)); do
      if [[ -n ${LISTENING[$((NODE_PORT + i))]:-} ]] || ((NODE_PORT + i == CTLD_PORT)); then busy=1; break; fi
    done
    ((busy == 0)) && break
    NODE_PORT=$((NODE_PORT + NODES))
  done
  ((busy == 0)) || die "no $NODES free consecutive slurmd ports from $NODE_PORT0"
  [[ $CTLD_PORT == "$CTLD_PORT0" ]] || log "port $CTLD_PORT0 busy: slurmctld uses $CTLD_PORT"
  [[ $NODE_PORT == "$NODE_PORT0" ]] || log "ports from $NODE_PORT0 busy: slurmd use $NODE_PORT.."
  return 0
}

# ---------------------------------------------------------------- install, munge, hosts
ensure_packages() {
  local missing=0 f
  for f in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/bin/srun /usr/bin/sinfo /usr/bin/scontrol \
    /usr/sbin/munged /usr/bin/munge /usr/bin/unmunge; do
    [[ -x $f ]] || { missing=1; break; }
  done
  ((missing)) || return 0
  ((EUID == 0)) || die "slurm-wlm/munge are missing and installing them needs root"
  log "installing slurm-wlm munge (apt-get)"
  local t=${EPOCHREALTIME/./}
  # Keep the packages' init scripts from starting daemons with the stock config while installing.
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get update -qq || log "apt-get update reported errors; trying the install anyway"
  local rc=0
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 slurm-wlm munge >/dev/null || rc=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install slurm-wlm munge failed (exit $rc)"
  log "installed slurm-wlm munge in $(((${EPOCHREALTIME/./} - t) / 1000)) ms"
}

ensure_munge() {
  # Fast path: a key and a daemon that answer.
  if [[ -s /etc/munge/munge.key ]] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  getent passwd munge >/dev/null || die "user munge missing (is the munge package installed?)"
  install -d -m 0700 -o munge -g munge /etc/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
      rm -f /etc/munge/munge.key && mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  install -d -m 0755 -o munge -g munge /run/munge
  install -d -m 0700 -o munge -g munge /var/lib/munge /var/log/munge
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  local old
  pid_in /run/munge/munged.pid
  old=$REPLY
  if [[ -n $old ]] && alive_as "$old" munged; then
    log "munged ($old) does not answer; restarting it"
    terminate 5 "$old"
  fi
  log "starting munged"
  # --force: a munged that died (or lingers as a zombie) leaves its socket behind.
  runuser -u munge -- /usr/sbin/munged --force </dev/null >/dev/null 2>&1 9>&- || die "munged failed to start; see /var/log/munge/munged.log"
  local n
  for ((n = 0; n < 50; n++)); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 20 /var/log/munge/munged.log >&2 2>/dev/null || true
  die "munge -n | unmunge still fails 5 s after starting munged"
}

# One line "127.0.0.1 n1 .. nM [hostname] # slurmpool-test" in /etc/hosts, so that no node name goes to DNS.
# M never shrinks (another cluster with more nodes may be running). The machine's own hostname is added only
# when no other line has it (slurmctld reaches an srun by resolving the name of the host it runs on).
ensure_hosts() {
  local host="" line f max=$NODES have_host=0 i
  local -a others=() mine=() fields
  { read -r host </proc/sys/kernel/hostname; } 2>/dev/null || true
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == *"# $MARK" ]]; then mine+=("$line"); continue; fi
    others+=("$line")
    read -r -a fields <<<"${line%%#*}"
    for ((i = 1; i < ${#fields[@]}; i++)); do [[ ${fields[i]} == "$host" ]] && have_host=1; done
  done </etc/hosts
  for line in "${mine[@]}"; do
    for f in ${line%%#*}; do [[ $f =~ ^n([0-9]+)$ ]] && ((BASH_REMATCH[1] > max)) && max=${BASH_REMATCH[1]}; done
  done
  local want="127.0.0.1"
  for ((i = 1; i <= max; i++)); do want+=" n$i"; done
  [[ -n $host && $host != localhost && $have_host == 0 ]] && want+=" $host"
  want+=" # $MARK"
  [[ ${#mine[@]} == 1 && ${mine[0]} == "$want" ]] && return 0
  # Rewrite in place (cat >, not mv): /etc/hosts may be a bind mount.
  local tmp
  tmp=$(mktemp)
  { ((${#others[@]} == 0)) || printf '%s\n' "${others[@]}"; printf '%s\n' "$want"; } >"$tmp"
  cat "$tmp" >/etc/hosts
  rm -f "$tmp"
  log "/etc/hosts: $want"
}

# ---------------------------------------------------------------- stand-in GPUs
# Device files for gres.conf's File=: character devices with /dev/null's numbers (1,3), so that anything
# that opens one reads nothing and writes nowhere. They must be devices: slurmd refuses plain files
# ("is not a valid character or block device") and jobs then get no GPU variables. The same files
# serve every node, as /dev/nvidia0.. do on real nodes.
FAKE_GPU=/dev/slurmpool-fake-gpu
ensure_fake_gpus() {
  local k f
  for ((k = 0; k < GPUS; k++)); do
    f=$FAKE_GPU$k
    [[ -e $f && ! -c $f ]] && rm -f "$f"
    [[ -c $f ]] && continue
    mknod -m 0666 "$f" c 1 3 || die "cannot create the character device $f (mknod); slurmd takes no plain file for a GPU. Run without stand-in GPUs: SLURMPOOL_TEST_GPUS=0"
  done
}
gres_line() { ((GPUS > 0)) && printf ' Gres=gpu:%d' "$GPUS"; return 0; }

write_gres_conf() {
  local gres tmp
  gres=$(dirname "$CONF")/gres.conf
  tmp=$(mktemp "$(dirname "$CONF")/.gres.conf.XXXXXX")
  {
    printf '%s\n' "$HEADER"
    if ((GPUS == 1)); then printf 'NodeName=%s Name=gpu File=%s0\n' "$(node_range)" "$FAKE_GPU"
    elif ((GPUS > 1)); then printf 'NodeName=%s Name=gpu File=%s[0-%d]\n' "$(node_range)" "$FAKE_GPU" $((GPUS - 1)); fi
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$gres"
}

# ---------------------------------------------------------------- config
write_conf() {
  mkdir -p "$(dirname "$CONF")"
  if [[ -e $CONF ]] && ! head -n 1 "$CONF" | grep -q "^# $MARK "; then
    [[ -e $CONF.before-$MARK ]] || cp -p "$CONF" "$CONF.before-$MARK"
    log "$CONF was not ours; saved as $CONF.before-$MARK"
  fi
  local tmp
  tmp=$(mktemp "$(dirname "$CONF")/.slurm.conf.XXXXXX")
  cat >"$tmp" <<EOF
$HEADER
# A test cluster on loopback: one slurmctld, $NODES slurmd on this host. Why each line: docs/test-cluster.md.
ClusterName=slurmpool
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$NODE_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$BASE/ctld
SlurmdSpoolDir=$BASE/spool/%n
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd-%n.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# no systemd, no cgroups
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
GresTypes=gpu
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# nodes share the machine's cores; declare what the test wants
SlurmdParameters=config_overrides
# fast tests
SchedulerParameters=batch_sched_delay=0,sched_interval=5,bf_interval=5
SlurmdTimeout=10
SlurmctldTimeout=10
MessageTimeout=5
KillWait=5
InactiveLimit=0
# listen on the address a name resolves to (127.0.0.1), not on every interface: slurmctld, slurmd and srun
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
ReturnToService=2
NodeName=$(node_range) NodeHostname=localhost NodeAddr=127.0.0.1 Port=$(if ((NODES == 1)); then printf '%d' "$NODE_PORT"; else printf '[%d-%d]' "$NODE_PORT" $((NODE_PORT + NODES - 1)); fi) CPUs=$CPUS$(gres_line) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  chmod 0644 "$tmp"
  mv -f "$tmp" "$CONF"
  write_gres_conf
}

# ---------------------------------------------------------------- node states
# "NAME STATE" per node, from sinfo (bounded; empty when slurmctld does not answer).
node_states() { timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null || true; }
# Up: responding (no '*' or other suffix) and not down/drained/failed/unknown.
is_up_state() { [[ $1 =~ ^(idle|mix|alloc|comp|resv|plnd)$ ]]; }
# Exit 0 iff sinfo lists every node of ours and each is up; with $1=idle, each must be idle.
all_nodes() {
  local want=$1 lines name st n=0
  lines=$(node_states)
  [[ -n $lines ]] || return 1
  while read -r name st; do
    [[ -n $name ]] || continue
    if [[ $want == idle ]]; then [[ $st == idle ]] || return 1; else is_up_state "$st" || return 1; fi
    n=$((n + 1))
  done <<<"$lines"
  ((n == NODES))
}
# Exit 0 iff node NAME's slurmd listens on its port (SlurmdPort + index - 1, from the config in use).
node_listening() {
  local line base=""
  while IFS= read -r line; do [[ $line == SlurmdPort=* ]] && base=${line#SlurmdPort=}; done <"$CONF"
  [[ $base =~ ^[0-9]+$ ]] || return 1
  listening $((base + ${1#n} - 1))
}
node_up() {
  local st
  st=$(timeout 5 sinfo -h -N -n "$1" -o '%t' 2>/dev/null | head -n 1 || true)
  is_up_state "$st"
}

dump_logs() {
  local f
  for f in "$BASE"/log/*.log "$BASE"/log/*.start; do
    [[ -s $f ]] || continue
    printf -- '--- last lines of %s\n' "$f" >&2
    tail -n 15 "$f" >&2
  done
}

# ---------------------------------------------------------------- daemons
start_ctld() {
  # -c: never pick up jobs or node states from an earlier run.
  env "$TAG=$BASE" /usr/sbin/slurmctld -c </dev/null >>"$BASE/log/slurmctld.start" 2>&1 9>&- ||
    { dump_logs; die "slurmctld failed to start"; }
}
# slurmd tagged with the cluster and with its node name (slurmstepd inherits both).
start_node() {
  env "$TAG=$BASE" "${TAG}_NODE=$BASE/$1" /usr/sbin/slurmd -N "$1" </dev/null >>"$BASE/log/slurmd-$1.start" 2>&1 9>&- ||
    { dump_logs; die "slurmd -N $1 failed to start"; }
}
# PIDs of node NAME's slurmd and slurmstepd (tagged with its name at start).
node_pids() {
  local f p
  while read -r f; do
    p=${f#/proc/}; p=${p%/environ}
    alive "$p" && printf '%s\n' "$p"
  done < <(grep -lzxF "${TAG}_NODE=$BASE/$1" /proc/[0-9]*/environ 2>/dev/null || true)
  return 0
}

wait_until() { # SECS DESCRIPTION COMMAND...: poll every 150 ms, bounded in time and count
  local secs=$1 what=$2; shift 2
  local deadline=$((${EPOCHREALTIME/./} + secs * 1000000)) n=0
  while ((n++ < secs * 7 + 2)); do
    "$@" && return 0
    ((${EPOCHREALTIME/./} > deadline)) && break
    sleep 0.15
  done
  log "timed out after ${secs}s waiting for $what"
  return 1
}

cluster_healthy() {
  local first=""
  { read -r first <"$CONF"; } 2>/dev/null || true
  [[ $first == "$HEADER" ]] || return 1
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || return 1
  ctld_alive || return 1
  local n
  for n in $(node_names); do slurmd_alive "$n" || return 1; done
  all_nodes up
}

# Stop every process of the cluster (the daemons, every slurmstepd and the tasks under them) with SIGKILL
# and wipe its state (logs are kept until the next `up`).
cluster_down() {
  local p
  local -a pids=()
  ctld_alive && pids+=("$CTLD_PID")
  for p in $(node_names); do slurmd_alive "$p" && pids+=("$SLURMD_PID"); done
  mapfile -t -O "${#pids[@]}" pids < <(tagged_pids "$BASE")
  if ((${#pids[@]})); then
    mapfile -t pids < <(with_descendants "${pids[@]}" | sort -un)
    # The state is wiped next, so nothing needs a graceful stop; SIGTERM would cost seconds (slurmctld
    # takes over 1 s to exit, slurmstepd ignores it, an srun whose controller is gone hangs on it).
    log "killing ${#pids[@]} processes: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait_gone 5 "${pids[@]}" || die "processes survived SIGKILL: ${pids[*]}"
  fi
  rm -rf "$BASE/ctld" "$BASE/spool" "$BASE/run"
}

cluster_up() {
  if cluster_healthy; then
    log "already up and healthy"
    return 0
  fi
  local leftovers
  leftovers=$(tagged_pids "$BASE")
  if [[ -n $leftovers ]] || ctld_alive; then
    log "cluster is half up (or configured differently): stopping it first"
  fi
  cluster_down
  ensure_packages
  ensure_munge
  ensure_hosts
  pick_ports
  ensure_fake_gpus
  write_conf
  rm -rf "$BASE/log.prev"
  [[ -d $BASE/log ]] && mv "$BASE/log" "$BASE/log.prev"
  local n dirs=("$BASE/ctld" "$BASE/run" "$BASE/log")
  for n in $(node_names); do dirs+=("$BASE/spool/$n"); done
  mkdir -p "${dirs[@]}"
  log "starting slurmctld on 127.0.0.1:$CTLD_PORT"
  start_ctld
  wait_until "$TIMEOUT" "slurmctld to listen on $CTLD_PORT" listening "$CTLD_PORT" ||
    { dump_logs; die "slurmctld did not start listening"; }
  log "starting slurmd $(node_names)(ports $NODE_PORT..$((NODE_PORT + NODES - 1)))"
  for n in $(node_names); do start_node "$n"; done
  wait_until "$TIMEOUT" "all $NODES nodes to be idle" all_nodes idle ||
    { timeout 5 sinfo >&2 2>/dev/null || true; dump_logs; die "cluster did not come up within ${TIMEOUT}s"; }
  log "cluster up: $(node_range) idle"
}

check_node_name() {
  [[ $1 =~ ^n([1-9][0-9]?)$ ]] && ((BASH_REMATCH[1] <= NODES)) || die "unknown node '$1' (nodes: $(node_names))"
}

# ---------------------------------------------------------------- main
cmd=${1:-}
case $cmd in
  up)
    ((EUID == 0)) || die "up must run as root"
    mkdir -p "$(dirname "$LOCK")"
    exec 9>"$LOCK"
    flock -w 300 9 || die "another test-cluster.sh holds $LOCK"
    cluster_up
    log "done in $(((${EPOCHREALTIME/./} - T0) / 1000)) ms"
    printf 'SLURM_CONF=%s\n' "$CONF"
    ;;
  down)
    ((EUID == 0)) || die "down must run as root"
    mkdir -p "$(dirname "$LOCK")"
    exec 9>"$LOCK"
    flock -w 300 9 || die "another test-cluster.sh holds $LOCK"
    cluster_down
    log "down in $(((${EPOCHREALTIME/./} - T0) / 1000)) ms"
    ;;
  status)
    ctld_alive || { printf 'slurmctld of %s is not running\n' "$BASE"; exit 1; }
    out=$(timeout 10 sinfo 2>&1) || { printf '%s\n' "$out"; exit 1; }
    printf '%s\n' "$out"
    all_nodes up
    ;;
  env)
    printf 'SLURM_CONF=%s\n' "$CONF"
    ;;
  restart-node)
    [[ $# -eq 2 ]] || die "usage: $0 restart-node NAME"
    check_node_name "$2"
    pids=()
    slurmd_alive "$2" && pids+=("$SLURMD_PID")
    for p in $(node_pids "$2"); do alive_as "$p" slurmd && pids+=("$p"); done
    ((${#pids[@]})) && terminate 5 $(printf '%s\n' "${pids[@]}" | sort -u)
    rm -f "$BASE/run/slurmd-$2.pid"
    start_node "$2"
    wait_until "$TIMEOUT" "slurmd of $2 to listen" node_listening "$2" || { dump_logs; die "slurmd of $2 did not start"; }
    wait_until "$TIMEOUT" "$2 to be up" node_up "$2" || { dump_logs; die "$2 did not come back"; }
    log "$2 restarted in $(((${EPOCHREALTIME/./} - T0) / 1000)) ms"
    ;;
  kill-node)
    [[ $# -eq 2 ]] || die "usage: $0 kill-node NAME"
    check_node_name "$2"
    pids=()
    slurmd_alive "$2" && pids+=("$SLURMD_PID")
    for p in $(node_pids "$2"); do alive_as "$p" slurmd && pids+=("$p"); done
    ((${#pids[@]})) || die "no slurmd of $2 is running"
    mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un)
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait_gone 5 "${pids[@]}" || die "slurmd of $2 survived SIGKILL"
    log "killed slurmd of $2 (${pids[*]})"
    ;;
  crash-node)
    [[ $# -eq 2 ]] || die "usage: $0 crash-node NAME"
    check_node_name "$2"
    mapfile -t pids < <(node_pids "$2")
    slurmd_alive "$2" && pids+=("$SLURMD_PID")
    ((${#pids[@]})) || die "no process of $2 is running"
    mapfile -t pids < <(with_descendants "${pids[@]}" | sort -un)
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait_gone 5 "${pids[@]}" || die "processes of $2 survived SIGKILL"
    log "crashed $2: killed ${pids[*]}"
    ;;
  *)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
