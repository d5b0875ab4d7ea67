"""`librarian watchdog`: free the caller's own stuck Librarian jobs, and nothing else.

scrontab jobs sometimes stick in the queue: held, requeued and held after a
failed launch, or "user env retrieval failed" (a compute node could not read
the user's environment, e.g. an NFS hiccup). Such a job never runs again on
its own and blocks its cron line. The watchdog looks only at the caller's own
pending jobs (`squeue --me`) whose name is one of Librarian's (`librarian-run`,
`librarian-watchdog`, `librarian-digest` by default), tries `scontrol release`,
looks again after a short wait, and cancels what is still stuck.

Seen in the lab's real scrontab (Slurm 22.05): scontrol refuses to hold or
release a scrontab job ("Cannot modify scrontab jobs through scontrol"), and
cancelling one comments its entry out of the crontab ("#DISABLED: "), so a
cancel alone would stop the cycle for good. After a cancel the watchdog
therefore puts Librarian's disabled entries back (`scrontab -l`, then
`scrontab FILE`), and scrontab schedules them anew. A user's other jobs and
entries, held or disabled on purpose or not, are never touched.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.slurm import Runner, SlurmError, run_slurm, slurm_tool

log = logging.getLogger("librarian.watchdog")

# squeue's reason for a job that will not start by itself.
STUCK_MARKERS = ("held", "launch failed", "env retrieval failed")
SQUEUE_FORMAT = "%i|%j|%r"


@dataclass(frozen=True)
class StuckJob:
    job_id: str
    name: str
    reason: str


def stuck_jobs(squeue_output: str, names: Sequence[str]) -> list[StuckJob]:
    """Librarian's stuck jobs in `squeue --me --noheader --states=PD --format=%i|%j|%r` (pure)."""
    out = []
    for line in squeue_output.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) != 3:
            continue
        job_id, name, reason = parts
        if name in names and any(m in reason.lower() for m in STUCK_MARKERS):
            out.append(StuckJob(job_id, name, reason))
    return out


DISABLED = "#DISABLED: "


def reenabled(scrontab_l: str, names: Sequence[str]) -> tuple[str, list[str]]:
    """`scrontab -l`'s text with the entries of Librarian's jobs that Slurm
    disabled (cancelling a scrontab job comments its entry out with
    "#DISABLED: ") enabled again, and the names enabled (pure)."""
    from collector.schedule import installed_lines

    lines = scrontab_l.splitlines()
    out, enabled = [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(DISABLED + "#SCRON"):
            # The entry: its directives and the cron line after them, all disabled.
            j = i
            while j < len(lines) and lines[j].startswith(DISABLED + "#SCRON"):
                j += 1
            if j < len(lines) and lines[j].startswith(DISABLED):
                entry = [ln[len(DISABLED):] for ln in lines[i:j + 1]]
                mine = list(installed_lines("\n".join(entry), tuple(names)))
                if mine:
                    out += entry
                    enabled += mine
                    i = j + 1
                    continue
        out.append(line)
        i += 1
    return "".join(f"{line}\n" for line in out), enabled


@dataclass
class WatchdogReport:
    released: list[str]
    cancelled: list[str]
    failed: list[str]
    reenabled: list[str] = dataclasses.field(default_factory=list)


def watchdog(slurm_bin: Path | None, names: Sequence[str], wait_seconds: float,
             dry_run: bool = False, runner: Runner = subprocess.run,
             timeout: float = 60) -> WatchdogReport:
    """Release, then cancel, the caller's stuck Librarian jobs; log every action.
    `SlurmError` when squeue cannot say which jobs are stuck."""

    def run(name: str, *args: str) -> str:
        return run_slurm([slurm_tool(slurm_bin, name), *args], timeout,
                         runner=runner).decode("utf-8", "replace")

    def stuck() -> list[StuckJob]:
        return stuck_jobs(run("squeue", "--me", "--noheader", "--states=PENDING",
                              f"--format={SQUEUE_FORMAT}"), names)

    report = WatchdogReport([], [], [])
    first = stuck()
    if not first:
        log.info("no stuck Librarian job")
        return report
    for job in first:
        if dry_run:
            log.info("would release job %s (%s): %s", job.job_id, job.name, job.reason)
            continue
        try:
            run("scontrol", "release", job.job_id)
        except SlurmError as err:   # scontrol refuses scrontab jobs: cancelled below
            log.info("could not release job %s (%s), reason %r: %s", job.job_id, job.name,
                     job.reason, err)
            continue
        log.info("released job %s (%s), reason was %r", job.job_id, job.name, job.reason)
    if dry_run:
        for job in first:
            log.info("would cancel job %s (%s) if it were still stuck after %g s",
                     job.job_id, job.name, wait_seconds)
        return report
    time.sleep(wait_seconds)
    still = {j.job_id: j for j in stuck()}
    for job in first:
        if job.job_id not in still:
            report.released.append(job.job_id)
            continue
        try:
            run("scancel", job.job_id)
        except SlurmError as err:
            log.error("cannot cancel job %s (%s): %s", job.job_id, job.name, err)
            report.failed.append(job.job_id)
            continue
        log.info("cancelled job %s (%s), still stuck: %r; scrontab will run it anew",
                 job.job_id, job.name, still[job.job_id].reason)
        report.cancelled.append(job.job_id)
    if report.cancelled:
        report.reenabled = _reenable(run, names)
    return report


def _reenable(run: Callable[..., str], names: Sequence[str]) -> list[str]:
    """Slurm comments out the scrontab entry of a cancelled scrontab job: put
    Librarian's entries back (the user's own lines are left as they are)."""
    import tempfile

    try:
        text = run("scrontab", "-l")
    except SlurmError as err:   # no scrontab here (the job came from sbatch or cron)
        log.debug("scrontab -l: %s", err)
        return []
    fixed, enabled = reenabled(text, names)
    if not enabled:
        return []
    with tempfile.NamedTemporaryFile("w", prefix="librarian-scrontab-", suffix=".txt") as fh:
        fh.write(fixed)
        fh.flush()
        try:
            run("scrontab", fh.name)
        except SlurmError as err:
            log.error("cannot enable the scrontab entries of %s again: %s", ", ".join(enabled), err)
            return []
    log.info("enabled the scrontab entries of %s again (Slurm disables a cancelled one)",
             ", ".join(enabled))
    return enabled
