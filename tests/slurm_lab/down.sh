#!/usr/bin/env bash
# Stop the Slurm lab's daemons, only those it started (by their PID files), in
# reverse order. The lab folder (database, state) is kept; `--wipe` removes it.
set -euo pipefail
# shellcheck source=tests/slurm_lab/common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"

for d in slurmd slurmctld slurmdbd mariadbd munged; do
    pidfile="$LAB/run/$d.pid"
    [[ -f "$pidfile" ]] || continue
    if alive "$pidfile"; then
        pid="$(cat "$pidfile")"
        log "stopping $d ($pid)"
        kill "$pid"
        for _ in $(seq 100); do alive "$pidfile" || break; sleep 0.1; done
        if alive "$pidfile"; then log "$d did not stop, killing"; kill -9 "$pid"; fi
    fi
    rm -f "$pidfile"
done
if [[ "${1:-}" == "--wipe" ]]; then
    log "removing $LAB"
    rm -rf "$LAB"
fi
