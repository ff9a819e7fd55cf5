#!/usr/bin/env bash
# On the bench machine: unpack .carry, then W2 scaling and the main bench (W1-W4, distributed), results into $OUT.
set -uo pipefail
repo=$PWD
work=/tmp/sp
mkdir -p "$work" && cd "$work"
xz -dc "$repo/.carry/node.xz" > node && chmod +x node && tar -xJf "$repo/.carry/app.tar.xz"
export PATH=$work:$PATH
out=${OUT:-/tmp/out}
mkdir -p "$out"
{ nproc; ./node --version; python3 --version; uptime; } > "$out/machine.txt" 2>&1
timeout 240 ./node bench/scaling.mjs --reps 2 --json "$out/scaling.json" > "$out/scaling.txt" 2> "$out/scaling.log"
timeout 250 ./node bench/run.mjs --only W1,W2,W3,W4,D --reps 3 --json "$out/bench.json" > "$out/bench.txt" 2> "$out/bench.log"
tail -n 40 "$out/scaling.txt" "$out/bench.txt"
