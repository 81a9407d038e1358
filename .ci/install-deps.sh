#!/usr/bin/env bash
# Installs the Debian packages the integration tests need (network namespaces, ping, iperf3,
# redis, ssh, netcat, a C compiler for the native pieces, clang, lld and zlib headers for the NativeAOT
# publish, for the HPC tests memcached with
# libmemcached's tools, Open MPI with NetPIPE, Slurm with munge, and busybox-static and Go for the
# static programs of the seccomp-mode tests, socat and NetPIPE (netpipe-tcp) for the isthmus bench
# smoke test, and Son of Grid Engine for the sge site scheduler). Idempotent: does nothing when every package is already installed, otherwise runs
# apt-get update once and installs what is missing.
# Package postinst scripts must not start services here: /usr/sbin/policy-rc.d says "exit 101".
set -euo pipefail

packages=(
    iproute2 iputils-ping iperf3
    redis-server redis-tools
    openssh-server openssh-client
    python3 netcat-openbsd procps psmisc curl util-linux
    gcc make
    clang lld zlib1g-dev
    memcached libmemcached-tools
    openmpi-bin netpipe-openmpi
    slurm-wlm slurmctld slurmd slurm-client munge
    busybox-static golang-go
    socat netpipe-tcp
    gridengine-master gridengine-exec gridengine-client
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# written by .ci/install-deps.sh: packages must not start services\nexit 101\n' \
        | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/dev/null
echo "install-deps: done"
