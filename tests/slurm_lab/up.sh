#!/usr/bin/env bash
# Bring up the Slurm lab: a single-node Slurm 22.05 cluster with full job
# accounting (munge, MariaDB, slurmdbd, slurmctld, slurmd) from Debian 12's
# packages, everything under one folder, for the integration tests.
#
#   sudo tests/slurm_lab/up.sh            # then: source $LAB/lab.env
#   LIBRARIAN_LAB_DIR=/somewhere tests/slurm_lab/up.sh
#
# Idempotent: daemons already running (by their PID files) are left alone, and
# the accounting objects are only added when missing, so a second run is quick.
# Needs root (it installs packages, adds the users alice, bob and carol, and
# runs the daemons). No systemd: every daemon is started directly.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/slurm_lab/common.sh
source "$HERE/common.sh"
PORT_BASE="${LIBRARIAN_LAB_PORT_BASE:-16810}"
DB_PORT=$((PORT_BASE + 6))     # MariaDB, on 127.0.0.1 only
CTLD_PORT=$((PORT_BASE + 7))
SLURMD_PORT=$((PORT_BASE + 8))
DBD_PORT=$((PORT_BASE + 9))
USERS=(alice bob carol)
NODE="$(hostname -s)"
CLUSTER=lab
DB_PASS=lab-only-password

die() { log "ERROR: $*"; exit 1; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out waiting for $what (logs: $LAB/log, $LAB/mysqld, $LAB/munge)"
        sleep 0.3
    done
}

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"

# --- packages and users --------------------------------------------------------
packages=(munge mariadb-server slurmctld slurmd slurmdbd slurm-client)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for u in "${USERS[@]}"; do
    id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$u"
done
# Debian ships no `scrontab` command: build it from Debian's own source (cached).
bash "$HERE/scrontab.sh"

# --- the folder ----------------------------------------------------------------
mkdir -p "$LAB"/{etc,log,run,state,spool,munge,mysql,mysqld,dev}
chmod 755 "$LAB" "$LAB/spool" "$LAB/etc" "$LAB/run"   # job users must reach them; slurmd spool must be 755
chown munge:munge "$LAB/munge"; chmod 755 "$LAB/munge"   # munged wants its socket folder reachable by all
chown mysql:mysql "$LAB/mysql" "$LAB/mysqld"   # data; socket, PID file and log

# Fake GPUs: character devices named in gres.conf (22.05 needs File=).
for i in 0 1 2 3 4 5 6 7; do
    [[ -e "$LAB/dev/gpu$i" ]] || mknod "$LAB/dev/gpu$i" c 1 3
done

if [[ ! -f "$LAB/munge/munge.key" ]]; then
    dd if=/dev/urandom of="$LAB/munge/munge.key" bs=1024 count=1 status=none
    chown munge:munge "$LAB/munge/munge.key"; chmod 400 "$LAB/munge/munge.key"
fi
MUNGE_SOCKET="$LAB/munge/munge.socket"

cat > "$LAB/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$LAB/state
SlurmdSpoolDir=$LAB/spool
SlurmctldPidFile=$LAB/run/slurmctld.pid
SlurmdPidFile=$LAB/run/slurmd.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_min_interval=200000
PriorityType=priority/basic
MinJobAge=300
KillWait=2
InactiveLimit=0
MessageTimeout=20
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations,limits,qos
ScronParameters=enable
Prolog=$LAB/etc/prolog.sh
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=64 RealMemory=256000 Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# A Prolog that fails the jobs a test names (run/fail-prolog-<job id>): how the
# lab makes a job stick in "launch failed requeued held", as a node that cannot
# start a job does (Slurm drains the node; the test resumes it). slurmd runs it
# on a job's first launch on the node only, not on a scrontab job's later runs.
cat > "$LAB/etc/prolog.sh" <<EOF
#!/bin/sh
[ -e "$LAB/run/fail-prolog-\$SLURM_JOB_ID" ] && exit 1
exit 0
EOF
chmod 755 "$LAB/etc/prolog.sh"
cat > "$LAB/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$NODE Name=gpu File=$LAB/dev/gpu[0-7]
EOF
cat > "$LAB/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$LAB/run/slurmdbd.pid
LogFile=$LAB/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$LAB/etc/slurmdbd.conf"
chmod 644 "$LAB/etc/slurm.conf" "$LAB/etc/gres.conf"

# A lab started with an older slurm.conf (say, before job accounting gathering
# was switched on) restarts slurmctld and slurmd, which read it only at start.
CONF_SUM="$(cat "$LAB/etc/slurm.conf" "$LAB/etc/gres.conf" | sha256sum | cut -d' ' -f1)"
if [[ -f "$LAB/run/conf.sum" && "$(cat "$LAB/run/conf.sum")" != "$CONF_SUM" ]]; then
    for d in slurmd slurmctld; do
        if alive "$LAB/run/$d.pid"; then
            log "slurm.conf changed: restarting $d"
            pid="$(cat "$LAB/run/$d.pid")"; kill "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
fi
echo "$CONF_SUM" > "$LAB/run/conf.sum"

cat > "$LAB/lab.env" <<EOF
# source this file to use the lab's Slurm commands
export SLURM_CONF=$LAB/etc/slurm.conf
export LIBRARIAN_LAB_DIR=$LAB
EOF
chmod 644 "$LAB/lab.env"
export SLURM_CONF="$LAB/etc/slurm.conf"

# --- daemons -------------------------------------------------------------------
if ! alive "$LAB/run/munged.pid"; then
    log "starting munged"
    runuser -u munge -- munged --key-file="$LAB/munge/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$LAB/munge/munged.pid" --log-file="$LAB/munge/munged.log" \
        --seed-file="$LAB/munge/munged.seed"
    ln -sf "$LAB/munge/munged.pid" "$LAB/run/munged.pid"
    wait_for 10 munged test -S "$MUNGE_SOCKET"
fi

if ! alive "$LAB/run/mariadbd.pid"; then
    if [[ ! -d "$LAB/mysql/mysql" ]]; then
        log "initialising MariaDB in $LAB/mysql"
        mariadb-install-db --user=mysql --datadir="$LAB/mysql" --skip-test-db >"$LAB/log/mariadb-install.log" 2>&1
    fi
    log "starting mariadbd on 127.0.0.1:$DB_PORT"
    setsid mariadbd --user=mysql --datadir="$LAB/mysql" --socket="$LAB/mysqld/mysqld.sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$LAB/mysqld/mariadbd.pid" \
        --log-error="$LAB/mysqld/mariadbd.log" --innodb-buffer-pool-size=64M \
        --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    ln -sf "$LAB/mysqld/mariadbd.pid" "$LAB/run/mariadbd.pid"
    wait_for 30 mariadbd mariadb --socket="$LAB/mysqld/mysqld.sock" -u root -e "select 1"
    mariadb --socket="$LAB/mysqld/mysqld.sock" -u root <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
fi

if ! alive "$LAB/run/slurmdbd.pid"; then
    log "starting slurmdbd"
    slurmdbd
    wait_for 30 slurmdbd sacctmgr -i show cluster
fi

# The cluster must exist in the database before slurmctld first registers.
if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

if ! alive "$LAB/run/slurmctld.pid"; then
    log "starting slurmctld"
    slurmctld
    wait_for 30 slurmctld scontrol ping
fi
if ! alive "$LAB/run/slurmd.pid"; then
    log "starting slurmd"
    slurmd
fi
wait_for 30 "the node to be idle" bash -c "sinfo -h -n '$NODE' -o %T | grep -Eq '^(idle|mixed|allocated)'"

# --- accounting: an account, two QoS with limits, three users -----------------
add() { sacctmgr -i "$@" >/dev/null 2>&1 || true; }   # "Nothing new added" is fine
sacctmgr -n -P show account format=account | grep -qx lab || add add account lab cluster="$CLUSTER"
for q in avery avery-b; do
    sacctmgr -n -P show qos format=name | grep -qx "$q" || add add qos "$q"
done
# gres/gpu exists as a TRES only once slurmctld has registered with slurmdbd.
wait_for 30 "the gres/gpu TRES" bash -c "sacctmgr -n -P show tres format=type,name | grep -qx 'gres|gpu'"
sacctmgr -i modify qos avery set GrpTRES=cpu=430,gres/gpu=39,mem=3359G >/dev/null
sacctmgr -i modify qos avery-b set GrpTRES=cpu=16,gres/gpu=4,mem=64G >/dev/null
for u in "${USERS[@]}"; do
    sacctmgr -n -P show assoc where user="$u" account=lab format=user | grep -qx "$u" \
        || add add user "$u" account=lab cluster="$CLUSTER"
    sacctmgr -i modify user "$u" set qos=avery,avery-b defaultqos=avery >/dev/null
done
wait_for 30 "sacct to answer" sacct -a -X -n -S now-1hours

log "up: source $LAB/lab.env  (sinfo: $(sinfo -h -o '%T %c CPUs %m MB %G'))"
