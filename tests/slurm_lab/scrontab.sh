#!/usr/bin/env bash
# Give the lab a real `scrontab`. Debian 12 packages slurmctld's side of
# scrontab (ScronParameters=enable works) but ships no `scrontab` command, so
# this builds it from Debian's own source package of the installed Slurm:
# `apt-get source` (from a deb-src list of its own, never touching the
# system's apt configuration), `configure` for config.h, then the four C files
# of src/scrontab compiled against the installed libslurmfull.so, as Slurm's
# Makefile.am does. About half a minute; the binary is cached per Slurm
# version in $CACHE, so later labs only copy it.
#
#   tests/slurm_lab/scrontab.sh        (run by up.sh; root)
#
# Installs /usr/local/bin/scrontab, where a site's Slurm commands would be,
# unless a scrontab is already on PATH.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/slurm_lab/common.sh
source "$HERE/common.sh"
CACHE="${LIBRARIAN_LAB_CACHE:-/var/cache/librarian-lab}"
TARGET=/usr/local/bin/scrontab

if command -v scrontab >/dev/null 2>&1; then
    exit 0
fi
version="$(dpkg-query -W -f='${Version}' slurmctld)"
binary="$CACHE/scrontab-$version"
libdir="$(dirname "$(dpkg -L slurm-wlm-basic-plugins | grep '/libslurmfull\.so$' | head -n1)")"
[[ -n "$libdir" && -f "$libdir/libslurmfull.so" ]] || { log "ERROR: libslurmfull.so not found"; exit 1; }

if [[ ! -x "$binary" ]]; then
    log "building scrontab from Debian's slurm-wlm $version source"
    tools=(gcc libc6-dev binutils make dpkg-dev xz-utils)
    missing=()
    for p in "${tools[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # A deb-src list and package lists of our own: the system's stay as they are.
    mkdir -p "$work/lists/partial"
    src_list="$work/src.list"
    : > "$src_list"
    # Every Debian archive the system reads (deb822 or one-line form), as deb-src.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        grep -E '^deb +' "$f" | grep -E 'debian' | sed -E 's/^deb +/deb-src /' >> "$src_list" || true
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk 'BEGIN{RS=""; FS="\n"} /debian/ && /Types:[ ]*deb/ {
                 uris=""; suites=""; comps=""; key="";
                 for (i = 1; i <= NF; i++) {
                     if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ ]*/, "", uris) }
                     if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ ]*/, "", suites) }
                     if ($i ~ /^Components:/) { comps = $i; sub(/^Components:[ ]*/, "", comps) }
                     if ($i ~ /^Signed-By:/) { key = $i; sub(/^Signed-By:[ ]*/, "", key) }
                 }
                 n = split(suites, s, " ");
                 for (j = 1; j <= n; j++)
                     printf "deb-src %s%s %s %s\n", (key != "" ? "[signed-by=" key "] " : ""), uris, s[j], comps
             }' "$f" >> "$src_list"
    done
    [[ -s "$src_list" ]] || { log "ERROR: no Debian archive in /etc/apt to fetch the source from"; exit 1; }
    apt_opts=(-o "Dir::Etc::SourceList=$src_list" -o "Dir::Etc::SourceParts=-"
              -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
    apt-get "${apt_opts[@]}" update -qq
    (cd "$work" && apt-get "${apt_opts[@]}" source -qq --download-only "slurm-wlm=$version" >/dev/null)
    (cd "$work" && dpkg-source -x -q ./*.dsc slurm >/dev/null 2>&1)
    (cd "$work/slurm" && ./configure -q --prefix=/usr --sysconfdir=/etc/slurm \
        --libdir="$(dirname "$libdir")" --without-munge >"$work/configure.log" 2>&1) \
        || { tail -20 "$work/configure.log" >&2; log "ERROR: configure failed"; exit 1; }
    s="$work/slurm/src/scrontab"
    for txt in default_crontab usage; do   # the texts scrontab prints, linked in as data
        (cd "$s" && ld -r -o "$work/$txt.bino" -z noexecstack --format=binary "$txt.txt")
        objcopy --rename-section .data=.rodata,alloc,load,readonly,data,contents "$work/$txt.bino"
    done
    gcc -O2 -DHAVE_CONFIG_H -I"$work/slurm" -o "$work/scrontab" \
        "$s/env.c" "$s/opt.c" "$s/parse.c" "$s/scrontab.c" "$work"/*.bino \
        -L"$libdir" -lslurmfull -Wl,-rpath,"$libdir" -Wl,--export-dynamic -ldl -lpthread
    mkdir -p "$CACHE"
    install -m 755 "$work/scrontab" "$binary"
fi
install -m 755 "$binary" "$TARGET"
log "scrontab: $TARGET (Slurm $version)"
