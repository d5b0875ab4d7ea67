#!/usr/bin/env bash
# Install Librarian into ./.venv (or $LIBRARIAN_VENV) with Debian's own Python,
# so that Slurm job users (scrontab, the watchdog) can run it too: the default
# python3 of some machines lives under /root, which other users cannot read.
#
#   scripts/install.sh          the product
#   scripts/install.sh test     the product and the test tools (and Debian's chromium)
#
# Installs missing Debian packages when run as root (apt-get), and re-runs pip
# only when pyproject.toml or the extras changed, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
venv="${LIBRARIAN_VENV:-.venv}"

debs=(python3 python3-venv)
if [[ "$extras" == *test* ]]; then
    # The page tests drive Debian's Chromium (Playwright never downloads a browser here);
    # the deploy tests push with git and copy over ssh to an sshd on loopback.
    debs+=(chromium fonts-dejavu-core git rsync openssh-client openssh-server)
    # The production tests put the app behind nginx and share its cache in Redis;
    # each test starts its own nginx and redis-server on loopback ports.
    debs+=(nginx-light redis-server)
fi
missing=()
for pkg in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "install: apt-get install ${missing[*]}"
    apt-get update -qq
    # Packages with daemons (sshd, nginx, redis) must not start them system-wide
    # here: a policy-rc.d that says "no" for the length of the install.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if ((made_policy)); then rm -f "$policy"; fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "install: creating $venv with /usr/bin/python3"
    /usr/bin/python3 -m venv "$venv"
fi
stamp="$venv/.librarian-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) extras=$extras"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "install: pip install -e .${extras:+[$extras]} into $venv"
    "$venv/bin/python" -m pip install -qq --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -qq --disable-pip-version-check -e ".${extras:+[$extras]}"
    echo "$want" > "$stamp"
fi
chmod -R a+rX "$venv" 2>/dev/null || true
