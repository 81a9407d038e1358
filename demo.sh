#!/usr/bin/env bash
# Builds Isthmus and runs its demo.
#   ./demo.sh        Isthmus's main job on this machine: a personal cluster on loopback (isthmus up
#                    examples/laptop.toml, the local backend, no root): two sites, one job proxy each, a
#                    personal Slurm across them; srun -N2 hostname, a TCP job across the two nodes, Open MPI
#                    NetPIPE across them (when Open MPI and NetPIPE are installed), status, down.
#                    Needs Slurm (slurmctld, slurmd, srun) and munge (munged, mungekey).
#   ./demo.sh up     the same
#   ./demo.sh http   the overlay alone (isthmus demo): a real python3 HTTP server at site b, a client at site a
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-up}" in
  up) ;;
  http) shift; set -- demo "$@" ;;
  *) set -- demo "$@" ;;
esac
if [ "${1:-up}" = up ]; then
  missing=""
  for tool in slurmctld slurmd srun munged mungekey python3; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
  done
  if [ -n "$missing" ]; then
    echo "demo.sh: the personal cluster needs Slurm and munge; missing:$missing" >&2
    echo "demo.sh: install them (Debian: apt-get install slurmctld slurmd slurm-client munge), or run './demo.sh http' (needs neither)" >&2
    exit 1
  fi
fi
start=$(date +%s)
dotnet build src/Isthmus.Cli -c Release -nologo -clp:ErrorsOnly -v:q
isthmus=$PWD/src/Isthmus.Cli/bin/Release/net10.0/isthmus
if [ "${1:-up}" = demo ]; then
  exec "$isthmus" "$@"
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-laptop-XXXXXX")
jobs=$(mktemp -d "${TMPDIR:-/tmp}/isthmus-laptop-jobs-XXXXXX")
rmdir "$state"
cleanup() {
  if [ -e "$state/state.json" ]; then "$isthmus" down --state "$state" || true; fi
  rm -rf "$jobs"
}
trap cleanup EXIT
shell() { echo "+ isthmus shell -c '$1'"; "$isthmus" shell --state "$state" -c "$1"; }

echo "+ isthmus up examples/laptop.toml"
"$isthmus" up examples/laptop.toml --state "$state" --wait 120
echo "+ isthmus status"
"$isthmus" status --state "$state"
shell 'srun -N2 hostname'
shell "srun -N2 --ntasks-per-node=1 python3 $PWD/examples/tcp-pingpong.py"
if command -v mpirun >/dev/null && command -v NPopenmpi >/dev/null; then
  cp examples/netpipe.sbatch "$jobs/"
  shell "cd $jobs && NETPIPE_OUT=$jobs/netpipe.out sbatch --wait -o $jobs/netpipe-%j.log netpipe.sbatch"
  grep -E '^ *[0-9]+: ' "$jobs"/netpipe-*.log | grep -v bytes || true
  echo "NetPIPE (bytes, Mbit/s, seconds), first and last rows:"
  head -n 1 "$jobs/netpipe.out"
  tail -n 1 "$jobs/netpipe.out"
else
  echo "(Open MPI NetPIPE skipped: install openmpi-bin and netpipe-openmpi to run it)"
fi
echo "+ isthmus down"
"$isthmus" down --state "$state"
echo "demo.sh: done in $(( $(date +%s) - start )) s"
