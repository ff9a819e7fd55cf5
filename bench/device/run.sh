#!/usr/bin/env bash
# On the bench machine: unpack .carry, then W2 scaling and the main bench (W1-W4, distributed, shared data), results into $OUT.
set -uo pipefail
repo=$PWD
work=/tmp/sp
mkdir -p "$work" && cd "$work"
xz -dc "$repo/.carry/node.xz" > node && chmod +x node && tar -xJf "$repo/.carry/app.tar.xz"
export PATH=$work:$PATH
out=${OUT:-/tmp/out}
mkdir -p "$out"
{ nproc; ./node --version; python3 --version; uptime; } > "$out/machine.txt" 2>&1
timeout 150 ./node bench/scaling.mjs --reps 2 --json "$out/scaling.json" > "$out/scaling.txt" 2> "$out/scaling.log"
timeout 200 ./node bench/run.mjs --only W1,W2,W3,W4,D --reps 3 --json "$out/bench.json" > "$out/bench.txt" 2> "$out/bench.log"
timeout 100 ./node bench/run.mjs --only S --reps 1 --json "$out/shared.json" > "$out/shared.txt" 2> "$out/shared.log"
tail -n 12 "$out/scaling.txt"; grep -E '^\S|MISS|PASS' "$out/bench.txt" | head -40; grep -E 'PASS|MISS' "$out/shared.txt"
