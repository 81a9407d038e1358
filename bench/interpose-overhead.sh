#!/usr/bin/env bash
# What interposition costs a program's data path: iperf3 (dynamic, so it runs in every mode) natively, under
# the preload shim and under the seccomp supervisor, with 100-byte and 64 KiB writes (the seed's tables 2
# and 3 and figure 8, done again). Interleaved rounds, medians, ratios to native and seccomp/preload.
#
#   loopback    server and client on node a1, the client connecting to a1's own VIP: the interposed path is
#               kernel loopback only (own VIP -> image), so the figure is the interposition cost alone.
#               native = the same iperf3 pair over 127.0.0.1.
#   intra-site  a1 -> a2 by VIP through the agents and the router (the real overlay path);
#               native = a1 -> a2 by their LAN addresses.
#
# Usage: bench/interpose-overhead.sh [SECONDS] [ROUNDS]   (root; needs iperf3, iproute2, python3)
set -euo pipefail
seconds=${1:-5}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
isthmus=$root/src/Isthmus.Cli/bin/Release/net10.0/isthmus
p=io$$
work=$(mktemp -d /tmp/isthmus-bench-XXXXXX)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for ns in $(ip netns list | awk '{print $1}' | grep "^$p-" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
    done
    rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "interpose-overhead: needs root (it builds network namespaces)" >&2; exit 2; }
dotnet build "$root/src/Isthmus.Cli" -c Release -nologo -clp:ErrorsOnly -v:q >/dev/null

X() { ip netns exec "$@"; }
for ns in ga a1 a2; do ip netns add "$p-$ns"; X "$p-$ns" ip link set lo up; done
X "$p-ga" ip addr add 203.0.113.1/32 dev lo # the router's WAN address (one site: no WAN peer)
X "$p-ga" ip link add "$p-bra" type bridge; X "$p-ga" ip addr add 192.0.2.1/24 dev "$p-bra"; X "$p-ga" ip link set "$p-bra" up
for n in a1:10 a2:11; do
    name=${n%:*}; host=${n#*:}
    ip link add "$p-$name" netns "$p-ga" type veth peer name eth0 netns "$p-$name"
    X "$p-ga" ip link set "$p-$name" master "$p-bra"; X "$p-ga" ip link set "$p-$name" up
    X "$p-$name" ip addr add "192.0.2.$host/24" dev eth0; X "$p-$name" ip link set eth0 up
done

export ISTHMUS_RUNTIME_DIR=$work/run
dir=$work/cluster
"$isthmus" cluster new "$dir" --network 100.64.0.0/16 >/dev/null
"$isthmus" cluster add-site "$dir" a --wan 203.0.113.1:7400 --lan 192.0.2.1:7401 >/dev/null
ip netns exec "$p-ga" "$isthmus" router "$dir" --site a --log-level Warning & pids+=($!)
sleep 1.5
for n in a1 a2; do
    ip netns exec "$p-$n" "$isthmus" node "$dir" --site a --name "$n" --log-level Warning > "$work/$n.vip" & pids+=($!)
done
for n in a1 a2; do
    for _ in $(seq 100); do [ -s "$work/$n.vip" ] && break; sleep 0.1; done
    [ -s "$work/$n.vip" ] || { echo "interpose-overhead: node $n did not come up" >&2; exit 1; }
done
vip() { cut -d' ' -f2 "$work/$1.vip"; }

iperf() { # iperf LABEL MODE SERVER_NODE CLIENT_NODE TARGET LEN: one run, prints "LABEL Gbit/s"
    local label=$1 mode=$2 sn=$3 cn=$4 target=$5 len=$6 via=() cvia=()
    if [ "$mode" != native ]; then
        via=("$isthmus" run --node "$sn" --mode "$mode" --)
        cvia=("$isthmus" run --node "$cn" --mode "$mode" --)
    fi
    X "$p-$sn" "${via[@]}" iperf3 -s -1 -p 5201 > "$work/srv.log" 2>&1 & local s=$!
    for _ in $(seq 50); do X "$p-$sn" ss -Hltn 'sport = :5201' | grep -q LISTEN && break; sleep 0.1; done
    X "$p-$cn" "${cvia[@]}" iperf3 -c "$target" -p 5201 -t "$seconds" -l "$len" -J > "$work/cli.json" 2>"$work/cli.err" || true
    wait "$s" 2>/dev/null || true
    python3 -c "import json,sys; print(sys.argv[1], json.load(open(sys.argv[2]))['end']['sum_received']['bits_per_second']/1e9)" "$label" "$work/cli.json" \
        || { echo "$label FAILED: $(cat "$work/cli.err")" >&2; echo "$label nan"; }
}

results=$work/results.txt
: > "$results"
for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for len in 100 65536; do
        iperf "loopback $len B native" native a1 a1 127.0.0.1 "$len" >> "$results"
        iperf "loopback $len B preload" preload a1 a1 "$(vip a1)" "$len" >> "$results"
        iperf "loopback $len B seccomp" seccomp a1 a1 "$(vip a1)" "$len" >> "$results"
        iperf "intra-site $len B native" native a2 a1 192.0.2.11 "$len" >> "$results"
        iperf "intra-site $len B preload" preload a2 a1 "$(vip a2)" "$len" >> "$results"
        iperf "intra-site $len B seccomp" seccomp a2 a1 "$(vip a2)" "$len" >> "$results"
    done
done

python3 - "$results" "$seconds" "$rounds" <<'PY'
import math, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, value = line.rsplit(' ', 1)
    rows.setdefault(label, []).append(float(value))
def med(label):
    values = [v for v in rows.get(label, []) if not math.isnan(v)]
    return statistics.median(values) if values else float('nan')
print(f"\niperf3 -t {sys.argv[2]}, {sys.argv[3]} interleaved rounds, median Gbit/s")
print(f"  {'path':26s} {'native':>8s} {'preload':>8s} {'seccomp':>8s}   preload/native  seccomp/native  seccomp/preload")
for path in ("loopback", "intra-site"):
    for size in ("100 B", "65536 B"):
        n, pl, sc = (med(f"{path} {size} {m}") for m in ("native", "preload", "seccomp"))
        print(f"  {path + ' ' + size:26s} {n:8.3f} {pl:8.3f} {sc:8.3f}   {pl / n:14.3f}  {sc / n:14.3f}  {sc / pl:15.3f}")
print("\nruns (Gbit/s):")
for label, values in rows.items():
    print(f"  {label:32s} {', '.join(f'{v:.3f}' for v in values)}")
PY
