#!/usr/bin/env bash
# Stop the Slurm lab's daemons, only those it started (by their PID files), in
# reverse order. The lab folder (database, state) is kept; `--wipe` removes it.
set -euo pipefail
LAB="${LIBRARIAN_LAB_DIR:-/var/tmp/librarian-slurm-lab}"

log() { printf 'slurm-lab: %s\n' "$*" >&2; }

for d in slurmd slurmctld slurmdbd mariadbd munged; do
    pidfile="$LAB/run/$d.pid"
    [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        log "stopping $d ($pid)"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { log "$d did not stop, killing"; kill -9 "$pid"; }
    fi
    rm -f "$pidfile"
done
if [[ "${1:-}" == "--wipe" ]]; then
    log "removing $LAB"
    rm -rf "$LAB"
fi
