#!/usr/bin/env bash
# Pack what the 16-core bench machine needs (it has no Node.js and reaches no registry) into .carry/:
# an xz copy of this node binary, and the built tree with its runtime dependencies and piscina.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .carry
[[ -s .carry/node.xz && .carry/node.xz -nt "$(command -v node)" ]] || xz -T2 -6 -c "$(command -v node)" > .carry/node.xz
mods=$( (npm ls --omit=dev --all --parseable; npm ls piscina --all --parseable) 2>/dev/null | grep /node_modules/ | sed "s|^$PWD/||" | sort -u)
tar --exclude=bench/out -cJf .carry/app.tar.xz package.json dist bench $mods
ls -la .carry
