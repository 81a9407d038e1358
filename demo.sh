#!/usr/bin/env bash
# Builds Isthmus and runs its demo.
#   ./demo.sh        a two-site cluster on loopback with a real client and server (isthmus demo)
#   ./demo.sh up     a personal cluster on loopback (isthmus up examples/laptop.toml): two sites, one job proxy
#                    each, a personal Slurm across them; srun -N2 hostname; status; down. Needs slurm and munge.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build src/Isthmus.Cli -c Release -nologo -clp:ErrorsOnly -v:q
isthmus=src/Isthmus.Cli/bin/Release/net10.0/isthmus
if [ "${1:-}" != up ]; then
  exec "$isthmus" demo "$@"
fi
state=$(mktemp -d /tmp/isthmus-laptop-XXXXXX)
rmdir "$state"
trap '[ -e "$state/state.json" ] && "$isthmus" down --state "$state"' EXIT
"$isthmus" up examples/laptop.toml --state "$state" --wait 120
"$isthmus" status --state "$state"
echo "+ isthmus shell -c 'srun -N2 hostname'"
"$isthmus" shell --state "$state" -c 'srun -N2 hostname'
"$isthmus" down --state "$state"
