#!/usr/bin/env bash
# A test sshd on loopback only (127.0.0.1 and 127.0.0.2, one port), for root by key, with every key and
# file it needs in one directory; the system's /etc/ssh and /root/.ssh are left alone.
#
#   test-sshd.sh up     install openssh-server (if missing), make keys and config, start sshd, check a login
#   test-sshd.sh down   stop it (keys stay, so known_hosts stays valid)
#   test-sshd.sh env    print KEY=VALUE lines: SLURMPOOL_SSHD_PORT, _KEY, _KNOWN_HOSTS, _DIR
#                       (use: export $(bash scripts/ssh/test-sshd.sh env))
#
# Environment: SLURMPOOL_SSHD_DIR (/tmp/slurmpool-sshd), SLURMPOOL_SSHD_PORT (2222; the next free port
# is taken when it is busy), SLURMPOOL_SSHD_TIMEOUT (10 s, for every wait). See docs/test-cluster.md.
set -euo pipefail

DIR=${SLURMPOOL_SSHD_DIR:-/tmp/slurmpool-sshd}
PORT0=${SLURMPOOL_SSHD_PORT:-2222}
TIMEOUT=${SLURMPOOL_SSHD_TIMEOUT:-10}
ADDRS=(127.0.0.1 127.0.0.2)
export DEBIAN_FRONTEND=noninteractive

T0=${EPOCHREALTIME/./}
die() { printf 'test-sshd: error: %s\n' "$*" >&2; exit 1; }
log() { local t=${EPOCHREALTIME/./}; printf '[test-sshd +%d.%03ds] %s\n' $(((t - T0) / 1000000)) $(((t - T0) / 1000 % 1000)) "$*" >&2; }

[[ $DIR == /* && $DIR != / ]] || die "SLURMPOOL_SSHD_DIR must be an absolute path other than /, got '$DIR'"
[[ $PORT0 =~ ^[0-9]+$ && $PORT0 -ge 1 && $PORT0 -le 65000 ]] || die "SLURMPOOL_SSHD_PORT must be in 1..65000, got '$PORT0'"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "SLURMPOOL_SSHD_TIMEOUT must be a positive integer (seconds), got '$TIMEOUT'"

CONFIG=$DIR/sshd_config
HOSTKEY=$DIR/ssh_host_ed25519_key
KEY=$DIR/id_ed25519
AUTH=$DIR/authorized_keys
KNOWN=$DIR/known_hosts
PIDFILE=$DIR/sshd.pid
LOGFILE=$DIR/sshd.log
PORTFILE=$DIR/port

# True if PID runs and is not a zombie (PID 1 here reaps late, so `kill -0` would still find a dead sshd).
alive() {
  local s=""
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || [[ -n $s ]] || return 1
  s=${s##*) }
  s=${s%% *}
  [[ -n $s && $s != Z && $s != X ]]
}
# SSHD_PID := the pid in our pid file; true if that process is a live sshd.
sshd_alive() {
  local c=""
  SSHD_PID=""
  { read -r SSHD_PID <"$PIDFILE"; } 2>/dev/null || true
  alive "$SSHD_PID" || return 1
  { read -r c <"/proc/$SSHD_PID/comm"; } 2>/dev/null || true
  [[ $c == sshd ]]
}
# LISTEN[addr:port] and LISTEN[*:port] := 1 for every listening TCP socket (from /proc/net/tcp{,6}; no ss needed).
scan_listening() {
  declare -gA LISTEN=()
  local f _sl addr _rem st _rest hexip port ip
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    {
      read -r _rest || true
      while read -r _sl addr _rem st _rest; do
        [[ $st == 0A ]] || continue
        port=$((16#${addr##*:}))
        LISTEN["*:$port"]=1
        hexip=${addr%%:*}
        if ((${#hexip} == 8)); then
          ip="$((16#${hexip:6:2})).$((16#${hexip:4:2})).$((16#${hexip:2:2})).$((16#${hexip:0:2}))"
          LISTEN["$ip:$port"]=1
        fi
      done
    } <"$f"
  done
}
listening_on_all() {
  local a
  scan_listening
  for a in "${ADDRS[@]}"; do [[ -n ${LISTEN["$a:$1"]:-} ]] || return 1; done
}
wait_gone() {
  local deadline=$((${EPOCHREALTIME/./} + $1 * 1000000)) n=0
  while ((n++ < $1 * 20 + 1)); do
    alive "$2" || return 0
    ((${EPOCHREALTIME/./} > deadline)) && return 1
    sleep 0.05
  done
  return 1
}

ensure_packages() {
  local f missing=0
  for f in /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen; do [[ -x $f ]] || missing=1; done
  ((missing)) || return 0
  ((EUID == 0)) || die "openssh-server/openssh-client are missing and installing them needs root"
  log "installing openssh-server openssh-client (apt-get)"
  local t=${EPOCHREALTIME/./} made_policy=0 rc=0
  # Keep the package's init script from starting the system sshd on port 22 while installing.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get update -qq || log "apt-get update reported errors; trying the install anyway"
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 openssh-server openssh-client >/dev/null || rc=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install openssh-server openssh-client failed (exit $rc)"
  log "installed openssh-server openssh-client in $(((${EPOCHREALTIME/./} - t) / 1000)) ms"
}

ensure_keys() {
  install -d -m 0700 "$DIR"
  [[ -s $HOSTKEY && -s $HOSTKEY.pub ]] || { rm -f "$HOSTKEY" "$HOSTKEY.pub"; ssh-keygen -q -t ed25519 -N '' -C slurmpool-test-host -f "$HOSTKEY"; }
  [[ -s $KEY && -s $KEY.pub ]] || { rm -f "$KEY" "$KEY.pub"; ssh-keygen -q -t ed25519 -N '' -C slurmpool-test-client -f "$KEY"; }
  chmod 0600 "$HOSTKEY" "$KEY"
  local want
  want=$(<"$KEY.pub")
  if [[ ! -s $AUTH ]] || [[ $(<"$AUTH") != "$want" ]]; then printf '%s\n' "$want" >"$AUTH"; fi
  chmod 0600 "$AUTH"
}

config_text() { # PORT
  cat <<EOF
# Test sshd written by scripts/ssh/test-sshd.sh; loopback only. See docs/test-cluster.md.
Port $1
AddressFamily inet
$(for a in "${ADDRS[@]}"; do printf 'ListenAddress %s:%s\n' "$a" "$1"; done)
HostKey $HOSTKEY
PidFile $PIDFILE
AuthorizedKeysFile $AUTH
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
AcceptEnv SLURMPOOL_*
# Debian's bash sources ~/.bashrc for a command run by sshd unless SHLVL is set; root's .bashrc on these
# machines (pyenv init) costs about 2 s per command.
SetEnv SHLVL=1
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 200
MaxSessions 100
LogLevel INFO
Subsystem sftp internal-sftp
EOF
}
known_hosts_text() { # PORT
  local a key
  key=$(<"$HOSTKEY.pub")
  key=${key% *} # drop the comment
  for a in "${ADDRS[@]}"; do
    if [[ $1 == 22 ]]; then printf '%s %s\n' "$a" "$key"; else printf '[%s]:%s %s\n' "$a" "$1" "$key"; fi
  done
}

pick_port() {
  local try
  scan_listening
  PORT=$PORT0
  for ((try = 0; try < 50; try++)); do [[ -n ${LISTEN["*:$PORT"]:-} ]] || break; PORT=$((PORT + 1)); done
  [[ -z ${LISTEN["*:$PORT"]:-} ]] || die "no free port in $PORT0..$PORT"
  [[ $PORT == "$PORT0" ]] || log "port $PORT0 busy: using $PORT"
}

check_login() {
  local a
  for a in "${ADDRS[@]}"; do
    timeout "$TIMEOUT" ssh -F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$KNOWN" -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 -p "$PORT" "root@$a" true ||
      { tail -n 20 "$LOGFILE" >&2 2>/dev/null || true; die "ssh root@$a -p $PORT true failed"; }
  done
}

sshd_up() {
  ensure_packages
  ensure_keys
  # Healthy: our sshd runs, with the config we would write now, and listens on every address.
  if sshd_alive && [[ -s $PORTFILE ]]; then
    read -r PORT <"$PORTFILE"
    if [[ -r $CONFIG && $(<"$CONFIG") == "$(config_text "$PORT")" ]] && listening_on_all "$PORT"; then
      [[ $(<"$KNOWN") == "$(known_hosts_text "$PORT")" ]] 2>/dev/null || known_hosts_text "$PORT" >"$KNOWN"
      log "already up on port $PORT"
      return 0
    fi
  fi
  sshd_down
  pick_port
  config_text "$PORT" >"$CONFIG"
  known_hosts_text "$PORT" >"$KNOWN"
  printf '%s\n' "$PORT" >"$PORTFILE"
  install -d -m 0755 /run/sshd # privilege separation directory
  /usr/sbin/sshd -t -f "$CONFIG" || die "sshd -t rejected $CONFIG"
  : >"$LOGFILE"
  /usr/sbin/sshd -f "$CONFIG" -E "$LOGFILE" </dev/null >/dev/null 2>&1 9>&- || { tail -n 20 "$LOGFILE" >&2; die "sshd failed to start"; }
  local deadline=$((${EPOCHREALTIME/./} + TIMEOUT * 1000000)) n=0
  until listening_on_all "$PORT"; do
    if ((n++ > TIMEOUT * 10)) || ((${EPOCHREALTIME/./} > deadline)); then
      tail -n 20 "$LOGFILE" >&2 || true
      die "sshd does not listen on ${ADDRS[*]} port $PORT after ${TIMEOUT}s"
    fi
    sleep 0.1
  done
  check_login
  log "sshd up on ${ADDRS[*]} port $PORT (login as root by key checked)"
}

sshd_down() {
  if sshd_alive; then
    kill -TERM "$SSHD_PID" 2>/dev/null || true
    if ! wait_gone 5 "$SSHD_PID"; then
      kill -KILL "$SSHD_PID" 2>/dev/null || true
      wait_gone 5 "$SSHD_PID" || die "sshd $SSHD_PID survived SIGKILL"
    fi
    log "stopped sshd $SSHD_PID"
  fi
  rm -f "$PIDFILE"
}

case ${1:-} in
  up)
    ((EUID == 0)) || die "up must run as root"
    install -d -m 0700 "$DIR"
    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "another test-sshd.sh holds $DIR/.lock"
    sshd_up
    ;;
  down)
    [[ -d $DIR ]] || exit 0
    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "another test-sshd.sh holds $DIR/.lock"
    sshd_down
    rm -f "$PORTFILE"
    ;;
  env)
    [[ -s $PORTFILE ]] || die "no test sshd in $DIR (run: $0 up)"
    read -r PORT <"$PORTFILE"
    printf 'SLURMPOOL_SSHD_PORT=%s\n' "$PORT"
    printf 'SLURMPOOL_SSHD_KEY=%s\n' "$KEY"
    printf 'SLURMPOOL_SSHD_KNOWN_HOSTS=%s\n' "$KNOWN"
    printf 'SLURMPOOL_SSHD_DIR=%s\n' "$DIR"
    ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
