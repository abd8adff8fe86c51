#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests and CI (Debian/Ubuntu, run as root):
#   bash scripts/slurm-cluster.sh start    # install slurm-wlm if missing, start it (no-op when up)
#   bash scripts/slurm-cluster.sh stop     # stop the daemons this script started, by PID
#   bash scripts/slurm-cluster.sh status   # exit 0 when the cluster accepts jobs
# Daemons: munged, mariadbd + slurmdbd (sacct, which the Snakemake plugin polls), slurmctld,
# slurmd. The node has every CPU, 80% of the memory and two fake GPUs (gres files are links to
# /dev/null), so `--gpus=1` jobs schedule without a GPU. It writes /etc/slurm/*.conf, so it
# refuses to run where a slurm.conf it did not write exists: it is not for a real cluster.
# Pitfalls (slurm 22.05, Debian 12, no systemd): a gres `File=/dev/null` with a count is rejected
# and count-only gres leaves the node INVAL, hence the links; without DefMemPerCPU a job without
# --mem takes the whole node's memory and jobs run one at a time.
set -euo pipefail

STATE=${ENTROBENCH_SLURM_STATE:-/tmp/entrobench-slurm}
PIDS=$STATE/pids
MARKER="# written by entrobench scripts/slurm-cluster.sh"
PACKAGES="munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
DB_PASSWORD=entrobench-local   # mariadb listens on 127.0.0.1 only, for this machine's slurmdbd
ACCOUNT=entrobench

log() { echo "slurm-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

wait_for() {  # wait_for SECONDS CMD...: poll until CMD succeeds
    local tries=$(($1 * 4)); shift
    for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
    return 1
}

alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

our_daemons_alive() {
    [[ -s $PIDS ]] || return 1
    local pid
    for pid in $(cat "$PIDS"); do alive "$pid" || return 1; done
}

node_idle() { sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }

accepts_jobs() { scontrol ping 2>/dev/null | grep -q UP && node_idle && sacct -n -X -S now >/dev/null 2>&1; }

record_pid() { echo "$1" >> "$PIDS"; }

pid_of() { cat "$1" 2>/dev/null || true; }

install_packages() {
    if dpkg -s $PACKAGES >/dev/null 2>&1; then return; fi
    command -v apt-get >/dev/null || die "apt-get not found: install $PACKAGES by hand"
    log "installing $PACKAGES (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends $PACKAGES >&2
}

write_config() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    if [[ -f /etc/slurm/slurm.conf ]] && ! grep -qF "$MARKER" /etc/slurm/slurm.conf; then
        die "/etc/slurm/slurm.conf exists and was not written by this script: refusing to replace it"
    fi
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm /run/munge /run/mysqld "$STATE/dev"
    chown slurm:slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
    chown munge:munge /run/munge
    chown mysql:mysql /run/mysqld
    ln -sfn /dev/null "$STATE/dev/gpu0"
    ln -sfn /dev/null "$STATE/dev/gpu1"
    cat > /etc/slurm/slurm.conf <<EOF
$MARKER
ClusterName=entrobench
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=300
KillWait=30
InactiveLimit=0
Waittime=0
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    cat > /etc/slurm/gres.conf <<EOF
$MARKER
AutoDetect=off
NodeName=${host} Name=gpu File=${STATE}/dev/gpu[0-1]
EOF
    cat > /etc/slurm/slurmdbd.conf <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=${DB_PASSWORD}
StorageLoc=slurm_acct_db
EOF
    chown slurm:slurm /etc/slurm/slurmdbd.conf
    chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
    if alive "$(pid_of /run/munge/munged.pid)"; then return; fi  # a running munged is fine to share
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
    wait_for 10 test -s /run/munge/munged.pid || die "munged did not start"
    record_pid "$(pid_of /run/munge/munged.pid)"
}

start_database() {
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
    # mariadbd itself, not mysqld_safe: its PID is the one to stop
    nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid > "$STATE/mariadbd.log" 2>&1 &
    record_pid $!
    wait_for 30 mariadb -uroot -e 'select 1' || die "mariadbd did not start (see $STATE/mariadbd.log)"
    mariadb -uroot <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${DB_PASSWORD}';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '${DB_PASSWORD}';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
    /usr/sbin/slurmdbd
    wait_for 30 sacctmgr -n list cluster || die "slurmdbd did not start (see /var/log/slurm/slurmdbd.log)"
    record_pid "$(pid_of /run/slurm/slurmdbd.pid)"
    # the cluster and an account exist before slurmctld starts, so jobs are accounted from the first
    sacctmgr -i add cluster entrobench >/dev/null 2>&1 || true
    sacctmgr -i add account "$ACCOUNT" Description=tests Organization=entrobench >/dev/null 2>&1 || true
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
}

start_slurm() {
    /usr/sbin/slurmctld
    wait_for 20 sh -c 'scontrol ping | grep -q UP' || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
    record_pid "$(pid_of /run/slurm/slurmctld.pid)"
    /usr/sbin/slurmd
    wait_for 30 node_idle || die "the node did not come up idle: $(sinfo -h -N -o '%T %E' 2>&1) (see /var/log/slurm/slurmd.log)"
    record_pid "$(pid_of /run/slurm/slurmd.pid)"
}

stop() {
    [[ -s $PIDS ]] || { log "nothing to stop"; return; }
    local pid
    for pid in $(tac "$PIDS"); do  # reverse start order: slurmd first, munged last
        alive "$pid" || continue
        log "stopping $(ps -o comm= -p "$pid") ($pid)"
        kill "$pid"
        wait_for 15 sh -c "! kill -0 $pid" || { log "$pid did not stop in 15 s: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
    done
    : > "$PIDS"
}

start() {
    [[ $(id -u) == 0 ]] || die "must run as root (it installs packages and starts system daemons)"
    mkdir -p "$STATE"
    if our_daemons_alive && accepts_jobs; then
        log "already running (PIDs in $PIDS)"
        return
    fi
    if [[ ! -s $PIDS ]] && command -v scontrol >/dev/null && accepts_jobs; then
        log "a SLURM cluster not started by this script is running; using it"
        return
    fi
    stop  # leftovers of a half-started or half-stopped cluster
    local t0=$SECONDS
    install_packages
    write_config
    start_munge
    start_database
    start_slurm
    wait_for 30 accepts_jobs || die "the cluster does not accept jobs: $(sinfo 2>&1)"
    log "up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %D %T %c cpus %m MB %G')"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) accepts_jobs ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
