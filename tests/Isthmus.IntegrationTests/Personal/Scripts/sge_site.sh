#!/bin/bash
# A site's Son of Grid Engine for the personal-cluster tests: qmaster + one execd on this host (run inside
# the test's network namespace), in a private cell with its own spool directory and ports, so runs never
# share state. Usage: sge_site.sh start|stop. Environment: SGE_CELL (required, unique per run),
# SGE_QMASTER_PORT, SGE_EXECD_PORT, SGE_WORK (spool and logs; removed by stop).
# Needs root only because the daemons switch to the sgeadmin user the Debian packages create; the test
# then submits as root, so min_uid is 0.
set -Eeuo pipefail
trap 'echo "sge_site.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
export SGE_ROOT=/var/lib/gridengine
: "${SGE_CELL:?}" "${SGE_WORK:?}"
export SGE_QMASTER_PORT=${SGE_QMASTER_PORT:-16444} SGE_EXECD_PORT=${SGE_EXECD_PORT:-16445}
admin=sgeadmin
host=$(hostname)
common=$SGE_ROOT/$SGE_CELL/common

# qconf -a*/-m* open $EDITOR on a temporary file: a sed script makes that non-interactive.
edit() {
    local expression=$1; shift
    printf '#!/bin/sh\nsed -i %s "$1"\n' "$expression" > "$SGE_WORK/editor.sh"
    chmod +x "$SGE_WORK/editor.sh"
    EDITOR=$SGE_WORK/editor.sh qconf "$@" >/dev/null 2>&1
}

start() {
    rm -rf "${SGE_WORK:?}" "${SGE_ROOT:?}/${SGE_CELL:?}"
    mkdir -p "$SGE_WORK"/{qmaster/job_scripts,spooldb,execd} "$common"
    cat > "$common/bootstrap" <<BOOT
admin_user              $admin
default_domain          none
ignore_fqdn             true
spooling_method         berkeleydb
spooling_lib            libspoolb
spooling_params         $SGE_WORK/spooldb
binary_path             /usr/sbin
qmaster_spool_dir       $SGE_WORK/qmaster
security_mode           none
listener_threads        2
worker_threads          2
scheduler_threads       1
BOOT
    echo "$host" > "$common/act_qmaster"
    # The host name resolves to 127.0.0.1, whose reverse name is "localhost": without the alias commlib
    # refuses clients whose resolved name differs from the name they give.
    echo "$host localhost" > "$common/host_aliases"
    sed -e "s|^execd_spool_dir .*|execd_spool_dir $SGE_WORK/execd|" -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
        -e 's/^load_report_time .*/load_report_time 00:00:05/' /usr/share/gridengine/default-configuration > "$SGE_WORK/global.conf"
    chown -R "$admin:$admin" "$SGE_WORK" "$SGE_ROOT/$SGE_CELL"
    runuser -u "$admin" -- sh -ec "
        /usr/lib/gridengine/spoolinit berkeleydb libspoolb $SGE_WORK/spooldb init
        /usr/lib/gridengine/spooldefaults configuration $SGE_WORK/global.conf
        /usr/lib/gridengine/spooldefaults complexes /usr/share/gridengine/util/resources/centry
        /usr/lib/gridengine/spooldefaults usersets /usr/share/gridengine/util/resources/usersets
        /usr/lib/gridengine/spooldefaults managers $admin root" > "$SGE_WORK/init.log" 2>&1
    /usr/sbin/sge_qmaster
    for _ in $(seq 1 100); do qconf -sh >/dev/null 2>&1 && break; sleep 0.1; done
    qconf -sh >/dev/null
    qconf -as "$host" >/dev/null 2>&1
    printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' \
        "$host" > "$SGE_WORK/exec.txt"
    qconf -Ae "$SGE_WORK/exec.txt" >/dev/null 2>&1
    printf 'group_name @allhosts\nhostlist %s\n' "$host" > "$SGE_WORK/hostgroup.txt"
    qconf -Ahgrp "$SGE_WORK/hostgroup.txt" >/dev/null 2>&1
    # The queue template lists parallel environments that do not exist; 4 slots per host, and a 20 s notify
    # (the warning before a qdel's SIGKILL), which a proxy's drain fits in.
    # No load threshold: on a busy 2-core test machine the queue would otherwise be in alarm and run nothing.
    edit "-e 's/^hostlist.*/hostlist @allhosts/' -e 's/^slots.*/slots 4/' -e 's/^pe_list.*/pe_list NONE/' -e 's/^notify.*/notify 00:00:20/' -e 's/^load_thresholds.*/load_thresholds NONE/'" -aq all.q
    edit "-e 's/^schedule_interval.*/schedule_interval 0:0:1/' -e 's/^flush_submit_sec.*/flush_submit_sec 1/' -e 's/^flush_finish_sec.*/flush_finish_sec 1/'" -msconf
    /usr/sbin/sge_execd
    for _ in $(seq 1 150); do
        qstat -f -q all.q 2>/dev/null | grep -q "all.q@$host .*lx-amd64 *$" && { echo "sge: cell $SGE_CELL up"; return 0; }
        sleep 0.1
    done
    echo "sge: execd did not come up" >&2
    tail -n 20 "$SGE_WORK"/qmaster/messages "$SGE_WORK"/execd/*/messages >&2 2>/dev/null || true
    return 1
}

stop() {
    local pid
    for pid in $(cat "$SGE_WORK"/execd/*/execd.pid 2>/dev/null) $(cat "$SGE_WORK/qmaster/qmaster.pid" 2>/dev/null); do
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "${SGE_WORK:?}" "${SGE_ROOT:?}/${SGE_CELL:?}"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
