#!/bin/bash
# Test helper: a real srun whose task fails on one node (SLURMPOOL_FAIL_NODE), as an agent that
# cannot start there would (a missing node binary, a full /tmp…). Used as SLURMPOOL_SRUN.
set -euo pipefail
args=()
fail=0
for a in "$@"; do
  [[ $a == "--nodelist=${SLURMPOOL_FAIL_NODE:-}" ]] && fail=1
  args+=("$a")
done
if ((fail)); then
  # keep srun's own options (everything before the agent's node binary), replace the agent
  opts=()
  for a in "${args[@]}"; do [[ $a == --* ]] && opts+=("$a") || break; done
  exec srun "${opts[@]}" /bin/sh -c 'echo "node $SLURMD_NODENAME: cannot start the agent (simulated: node binary missing)" >&2; exit 127'
fi
exec srun "${args[@]}"
