#!/usr/bin/env bash
# The Debian packages CI's tests need: Slurm and munge (the test cluster), OpenSSH (the ssh transport's
# test sshd), GNU parallel, Chromium (the HTML report's browser test, driven by playwright-core at
# /usr/bin/chromium), python3-msgpack (Python task modules), and python3 when none is on PATH.
# Idempotent: installs only what is missing, with one `apt-get update` first, and prints what it
# installed and how long it took.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

T0=${EPOCHREALTIME/./}
elapsed() { local t=${EPOCHREALTIME/./}; printf '%d.%01d s' $(((t - T0) / 1000000)) $(((t - T0) / 100000 % 10)); }

# python3-msgpack: the msgpack package for Python task modules' workers (test/python*.test.ts run with it
# and with the built-in codec); it brings Debian's python3 with it.
want=(slurm-wlm munge openssh-server openssh-client parallel chromium python3-msgpack)
# python3 may come from elsewhere (pyenv, a venv); install Debian's only when there is none.
command -v python3 >/dev/null 2>&1 || want+=(python3)

declare -A installed=()
while read -r pkg status; do
  [[ $status == installed ]] && installed[$pkg]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${want[@]}" 2>/dev/null || true)
missing=()
for pkg in "${want[@]}"; do [[ -n ${installed[$pkg]:-} ]] || missing+=("$pkg"); done

if ((${#missing[@]} == 0)); then
  echo "install-deps: nothing to install (${want[*]} present; $(elapsed))"
  exit 0
fi
if ((EUID != 0)); then
  echo "install-deps: error: missing ${missing[*]} and not root" >&2
  exit 1
fi

log=$(mktemp /tmp/install-deps.XXXXXX.log)
# Keep the packages' init scripts from starting the stock daemons (sshd on port 22, slurmd, munged)
# while installing: CI starts its own, on loopback, from scripts/slurm and scripts/ssh.
made_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && made_policy=1
fi
cleanup() { ((made_policy == 0)) || rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

echo "install-deps: installing ${missing[*]}"
if ! apt-get update -qq >>"$log" 2>&1; then
  echo "install-deps: apt-get update reported errors (see $log); trying the install anyway" >&2
fi
t_update=$(elapsed)
if ! apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-deps: error: apt-get install ${missing[*]} failed (log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "install-deps: installed ${missing[*]} in $(elapsed) (apt-get update done at $t_update)"
