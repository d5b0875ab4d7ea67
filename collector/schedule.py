"""`librarian scrontab`: the lines that run Librarian unattended (pure text).

For Slurm's scrontab (as the seed ran it): `run` every collect interval
(app.collect_interval_minutes, 10 by default), the watchdog twice as often,
and the digest weekly or monthly, each with `--export=NONE`, its job name
(the watchdog recognises Librarian's jobs by it), a short time limit and a
log file under the data folder; and the same as a crontab and as systemd
timer units, for hosts without scrontab. The whole text is a valid scrontab
file as printed (`librarian scrontab > f && scrontab f`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

# When the digest goes out: Monday 07:00, or 07:00 on the first of the month.
DIGEST_CRON = {"week": "0 7 * * 1", "month": "0 7 1 * *"}


def cron_every(minutes: int) -> str:
    """The cron schedule for "every `minutes` minutes" (a divisor of an hour,
    or whole hours dividing a day); ValueError for other values."""
    if 1 <= minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    raise ValueError(f"{minutes} minutes is not a cron interval (use a divisor of 60, "
                     "or whole hours that divide 24)")


@dataclass(frozen=True)
class Schedule:
    exe: Path
    config: Path
    logs: Path
    run_name: str
    watchdog_name: str
    digest_name: str
    interval_minutes: int = 10
    digest_period: str = "week"
    digest_configured: bool = False   # a channel to send it to ([notify])


def scrontab_text(s: Schedule) -> str:
    exe, config = shlex.quote(str(s.exe)), shlex.quote(str(s.config))
    run = f"{exe} run --config {config} -q"
    dog = f"{exe} watchdog --config {config}"
    digest = f"{exe} digest --config {config} --period {s.digest_period} -q"
    every = cron_every(s.interval_minutes)
    dog_every = cron_every(max(1, s.interval_minutes // 2) if s.interval_minutes < 60 else 30)
    digest_cron = DIGEST_CRON[s.digest_period]
    digest_lines = (
        f"#SCRON --export=NONE --job-name={s.digest_name} --time=00:10:00 "
        f"--output={s.logs}/{s.digest_name}-%j.log\n{digest_cron} {digest}\n"
        if s.digest_configured else
        f"# The digest: configure [notify] (SMTP or a webhook), then print these lines again.\n"
        f"# {digest_cron} {digest}\n")
    timer = (f"*:0/{s.interval_minutes}" if s.interval_minutes < 60
             else f"0/{s.interval_minutes // 60}:00")
    return f"""\
# --- scrontab -e (Slurm) ------------------------------------------------------
#SCRON --export=NONE --job-name={s.run_name} --time=00:20:00 --output={s.logs}/{s.run_name}-%j.log
{every} {run}
#SCRON --export=NONE --job-name={s.watchdog_name} --time=00:05:00 --output={s.logs}/{s.watchdog_name}-%j.log
{dog_every} {dog}
{digest_lines}
# --- crontab -e (hosts without scrontab; no watchdog needed) ------------------
# {every} {run} >> {s.logs}/{s.run_name}.log 2>&1

# --- systemd (as the user: ~/.config/systemd/user/), then:
#     systemctl --user enable --now librarian-run.timer
# librarian-run.service:
#   [Unit]
#   Description=Librarian: collect, export, deploy, alerts
#   [Service]
#   Type=oneshot
#   ExecStart={run}
# librarian-run.timer:
#   [Unit]
#   Description=Librarian every {s.interval_minutes} minutes
#   [Timer]
#   OnCalendar={timer}
#   Persistent=true
#   [Install]
#   WantedBy=timers.target
"""


def installed_lines(scrontab_l: str, names: tuple[str, ...]) -> dict[str, str]:
    """Of `scrontab -l`'s text, the cron line each of Librarian's job names
    (`#SCRON ... --job-name=NAME`, the directive before a line) stands over."""
    found: dict[str, str] = {}
    name = ""
    for line in scrontab_l.splitlines():
        text = line.strip()
        if text.startswith("#SCRON"):
            words = shlex.split(text[len("#SCRON"):], comments=False)
            for i, word in enumerate(words):
                if word in ("-J", "--job-name") and i + 1 < len(words):
                    name = words[i + 1]
                elif word.startswith("--job-name="):
                    name = word.split("=", 1)[1]
                elif word.startswith("-J") and len(word) > 2:
                    name = word[2:]
        elif text and not text.startswith("#"):
            if name in names and name not in found:
                found[name] = text
            name = ""
    return found


@dataclass(frozen=True)
class LastRun:
    job_id: str
    name: str
    state: str
    exit_code: str
    start: str
    end: str

    @property
    def ok(self) -> bool:
        """A scrontab job that ran is REQUEUED (for its next time) whatever its
        outcome: the exit code tells. Pending (not run yet) is fine too."""
        state = self.state.split()[0] if self.state else ""
        if state in ("PENDING", "RUNNING"):
            return True
        return state in ("REQUEUED", "COMPLETED") and self.exit_code == "0:0"


LAST_RUN_FORMAT = "JobID,JobName,State,ExitCode,Start,End"


def last_runs(sacct_p: str) -> dict[str, LastRun]:
    """The latest job of each name in `sacct -X -n -P -o` LAST_RUN_FORMAT
    (one line per job: its last run; jobs in submission order)."""
    out: dict[str, LastRun] = {}
    for line in sacct_p.splitlines():
        parts = line.split("|")
        if len(parts) == 6 and parts[0]:
            out[parts[1]] = LastRun(*parts)
    return out
