# Shared by up.sh and down.sh (sourced).
LAB="${LIBRARIAN_LAB_DIR:-/var/tmp/librarian-slurm-lab}"

log() { printf 'slurm-lab: %s\n' "$*" >&2; }

alive() {  # alive PIDFILE: the daemon named by the file runs (not a zombie, not a reused PID)
    local pid name
    [[ -f "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null)" && [[ -n "$pid" ]] || return 1
    name="$(basename "$1" .pid)"
    ps -p "$pid" -o stat=,comm= 2>/dev/null | grep -Eq "^[^Z]+ +${name}"
}
