"""`librarian scrontab`: the lines that run Librarian unattended (pure text).

For Slurm's scrontab (as the seed ran it): `run` every 10 minutes and the
watchdog every 5, each with `--export=NONE`, its job name (the watchdog
recognises Librarian's jobs by it), a short time limit and a log file under
the data folder; and the same as a crontab and as systemd timer units, for
hosts without scrontab.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def scrontab_text(exe: Path, config: Path, logs: Path, run_name: str, watchdog_name: str) -> str:
    run = f"{shlex.quote(str(exe))} run --config {shlex.quote(str(config))} -q"
    dog = f"{shlex.quote(str(exe))} watchdog --config {shlex.quote(str(config))}"
    return f"""\
# --- scrontab -e (Slurm) ------------------------------------------------------
#SCRON --export=NONE --job-name={run_name} --time=00:20:00 --output={logs}/{run_name}-%j.log
*/10 * * * * {run}
#SCRON --export=NONE --job-name={watchdog_name} --time=00:05:00 --output={logs}/{watchdog_name}-%j.log
*/5 * * * * {dog}

# --- crontab -e (hosts without scrontab; no watchdog needed) ------------------
# */10 * * * * {run} >> {logs}/{run_name}.log 2>&1

# --- systemd (as the user: ~/.config/systemd/user/), then:
#     systemctl --user enable --now librarian-run.timer
# librarian-run.service:
#   [Unit]
#   Description=Librarian: collect, export, deploy
#   [Service]
#   Type=oneshot
#   ExecStart={run}
# librarian-run.timer:
#   [Unit]
#   Description=Librarian every 10 minutes
#   [Timer]
#   OnCalendar=*:0/10
#   Persistent=true
#   [Install]
#   WantedBy=timers.target
"""
