#!/usr/bin/env bash
# iperf3 throughput through Isthmus compared with native, in one run, interleaved so machine noise hits
# every configuration alike. Builds its own namespace topology (TEST-NET addresses, no default routes on
# compute nodes), runs ROUNDS rounds of SECONDS-second iperf3 runs and prints medians and ratios:
#
#   native gw-gw        iperf3 between the two site gateways over the WAN link (the best the WAN allows)
#   isthmus inter-site  a1 -> b1 by VIP: agent, router A, router B (TLS 1.3 WAN leg), agent
#   isthmus cleartext   the same with the cluster file's wan_encryption = false
#   isthmus intra-site  a1 -> a2 by VIP: agent, router A, agent
#
# Usage: bench/overlay-throughput.sh [SECONDS] [ROUNDS]   (root; needs iperf3, iproute2, python3)
#        UDP_RATE=1G bench/overlay-throughput.sh ...       the same with iperf3 -u at that offered rate
#        (1400-byte datagrams); the figure is the goodput the receiver got, loss counted out
set -euo pipefail
seconds=${1:-5}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
isthmus=$root/src/Isthmus.Cli/bin/Release/net10.0/isthmus
p=ib$$
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

[ "$(id -u)" -eq 0 ] || { echo "overlay-throughput: needs root (it builds network namespaces)" >&2; exit 2; }
dotnet build "$root/src/Isthmus.Cli" -c Release -nologo -clp:ErrorsOnly -v:q >/dev/null

X() { ip netns exec "$@"; }
for ns in ga gb a1 a2 b1; do ip netns add "$p-$ns"; X "$p-$ns" ip link set lo up; done
ip link add "$p-w1" netns "$p-ga" type veth peer name "$p-w2" netns "$p-gb"
X "$p-ga" ip addr add 203.0.113.1/24 dev "$p-w1"; X "$p-ga" ip link set "$p-w1" up
X "$p-gb" ip addr add 203.0.113.2/24 dev "$p-w2"; X "$p-gb" ip link set "$p-w2" up
X "$p-ga" ip link add "$p-bra" type bridge; X "$p-ga" ip addr add 192.0.2.1/24 dev "$p-bra"; X "$p-ga" ip link set "$p-bra" up
for n in a1:10 a2:11; do
    name=${n%:*}; host=${n#*:}
    ip link add "$p-$name" netns "$p-ga" type veth peer name eth0 netns "$p-$name"
    X "$p-ga" ip link set "$p-$name" master "$p-bra"; X "$p-ga" ip link set "$p-$name" up
    X "$p-$name" ip addr add "192.0.2.$host/24" dev eth0; X "$p-$name" ip link set eth0 up
done
ip link add "$p-b1" netns "$p-gb" type veth peer name eth0 netns "$p-b1"
X "$p-gb" ip addr add 198.51.100.1/24 dev "$p-b1"; X "$p-gb" ip link set "$p-b1" up
X "$p-b1" ip addr add 198.51.100.10/24 dev eth0; X "$p-b1" ip link set eth0 up

export ISTHMUS_RUNTIME_DIR=$work/run
start_cluster() { # start_cluster NAME [--no-wan-encryption]: routers and nodes a1 a2 b1 of a new cluster
    local dir=$work/$1; shift
    "$isthmus" cluster new "$dir" --network 100.64.0.0/16 "$@" >/dev/null
    "$isthmus" cluster add-site "$dir" a --wan 203.0.113.1:7400 --lan 192.0.2.1:7401 >/dev/null
    "$isthmus" cluster add-site "$dir" b --wan 203.0.113.2:7400 --lan 198.51.100.1:7401 >/dev/null
    ip netns exec "$p-ga" "$isthmus" router "$dir" --site a --log-level Warning & pids+=($!)
    ip netns exec "$p-gb" "$isthmus" router "$dir" --site b --log-level Warning & pids+=($!)
    sleep 1.5
    for n in a1:a a2:a b1:b; do
        ip netns exec "$p-${n%:*}" "$isthmus" node "$dir" --site "${n#*:}" --name "${n%:*}" --log-level Warning > "$work/${n%:*}.vip" & pids+=($!)
    done
    for n in a1 a2 b1; do
        for _ in $(seq 50); do [ -s "$work/$n.vip" ] && break; sleep 0.1; done
    done
}
stop_cluster() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
vip() { cut -d' ' -f2 "$work/$1.vip"; }

iperf() { # iperf LABEL SERVER_NS CLIENT_NS TARGET [run]: one iperf3 run, prints "LABEL Gbit/s"
    local label=$1 sns=$2 cns=$3 target=$4 via=() cvia=()
    if [ "${5:-}" = run ]; then via=("$isthmus" run --node "${sns#"$p"-}" --); cvia=("$isthmus" run --node "${cns#"$p"-}" --); fi
    ip netns exec "$sns" "${via[@]}" iperf3 -s -1 -p 5201 > "$work/srv.log" 2>&1 & local s=$!
    sleep 0.4
    local udp=()
    if [ -n "${UDP_RATE:-}" ]; then udp=(-u -b "$UDP_RATE" -l 1400); fi
    X "$cns" "${cvia[@]}" iperf3 -c "$target" -p 5201 -t "$seconds" "${udp[@]}" -J > "$work/cli.json" 2>"$work/cli.err" || true
    wait "$s" 2>/dev/null || true
    python3 -c "
import json, sys
end = json.load(open(sys.argv[2]))['end']
if 'BENCH_DEBUG' in __import__('os').environ: print(sys.argv[1], json.dumps(end)[:3000], file=sys.stderr)
if 'sum_received' in end:
    print(sys.argv[1], end['sum_received']['bits_per_second'] / 1e9)
else:  # UDP: offered rate minus what the receiver reported lost
    s = end['sum']
    print(sys.argv[1], s['bits_per_second'] * (1 - s['lost_percent'] / 100) / 1e9)
" "$label" "$work/cli.json" \
        || { echo "$label FAILED: $(cat "$work/cli.err")" >&2; echo "$label nan"; }
}

results=$work/results.txt
: > "$results"
for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    iperf "native gw-gw" "$p-gb" "$p-ga" 203.0.113.2 >> "$results"
    start_cluster "tls$round"
    iperf "isthmus inter-site (TLS)" "$p-b1" "$p-a1" "$(vip b1)" run >> "$results"
    iperf "isthmus intra-site" "$p-a2" "$p-a1" "$(vip a2)" run >> "$results"
    stop_cluster
    start_cluster "clear$round" --no-wan-encryption
    iperf "isthmus inter-site (cleartext)" "$p-b1" "$p-a1" "$(vip b1)" run >> "$results"
    stop_cluster
done

python3 - "$results" "$seconds" "$rounds" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, value = line.rsplit(' ', 1)
    rows.setdefault(label, []).append(float(value))
native = statistics.median(rows["native gw-gw"])
print(f"\niperf3 -t {sys.argv[2]}, {sys.argv[3]} interleaved rounds, median Gbit/s (ratio to native gw-gw)")
for label, values in rows.items():
    m = statistics.median(values)
    print(f"  {label:32s} {m:7.2f}  ({m / native:.2f})   runs: {', '.join(f'{v:.2f}' for v in values)}")
PY
