"""Librarian run by the lab's real scrontab, as a group's member installs it.

The lab builds `scrontab` from Debian's own Slurm source (tests/slurm_lab/
scrontab.sh). alice installs exactly the lines `librarian scrontab` prints
(with app.collect_interval_minutes = 1: the cycle every minute, the watchdog
every minute), and slurmctld runs them. Then:
  - a cycle runs as her: collect, export and the status file;
  - `librarian doctor` sees the lines and how they last ran;
  - a cycle that finds the lock held ends quietly: its job exits 0;
  - a cycle stuck in "launch failed requeued held" (the lab's Prolog fails the
    first launch of the job a test names, as a node that cannot start a job
    does) is freed by the
    scrontab-run watchdog: scontrol refuses scrontab jobs, so it cancels it
    and puts back the entry Slurm disables on a cancel; the next cycle runs.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collector.lock import DataLock
from tests.slurm_lab.lab import LAB_DIR, Lab
from tests.test_ops_lab import as_user, exe  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slurm
SCRONTAB = shutil.which("scrontab") or "/usr/local/bin/scrontab"


def wait(what: str, check: Callable[[], object], timeout: float, every: float = 2.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)


@pytest.fixture
def site(lab: Lab) -> Iterator[Path]:
    site = Path(f"/var/tmp/librarian-scron-{os.getpid()}-{time.monotonic_ns()}")
    site.mkdir(mode=0o755)
    (site / "librarian.toml").write_text(
        '[site]\nname = "Lab"\ntimezone = "UTC"\ndata_dir = "data"\n'
        "[collect]\nbin_seconds = 60\nwindow_days = 1\nhistory_days = 0\n"
        "[app]\ncollect_interval_minutes = 1\n"
        "[ops]\nwatchdog_wait_seconds = 3\n"
        '[[qos]]\nname = "avery"\n')
    for p in (site, site / "librarian.toml"):
        shutil.chown(p, "alice", "alice")
    yield site
    as_user(lab, "alice", SCRONTAB, "-r")
    jobs = lab.run("squeue", "--noheader", "--user=alice", "--format=%i", check=False).stdout.split()
    lab.cancel(*jobs)
    for flag in (LAB_DIR / "run").glob("fail-prolog-*"):
        flag.unlink()
    lab.run("scontrol", "update", f"nodename={os.uname().nodename.split('.')[0]}", "state=resume",
            check=False)
    shutil.rmtree(site, ignore_errors=True)


def status(site: Path) -> dict:
    try:
        return json.loads((site / "data" / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def run_job(lab: Lab) -> str:
    out = lab.run("squeue", "--noheader", "--user=alice", "--name=librarian-run", "--format=%i",
                  check=False).stdout.split()
    return out[0] if out else ""


def last_run(lab: Lab, job: str) -> list[str]:
    """The job's last run in sacct: [State, ExitCode, Start]."""
    out = lab.run("sacct", "-X", "-n", "-P", "-j", job, "--format=State,ExitCode,Start",
                  check=False).stdout.strip().splitlines()
    return out[-1].split("|") if out else []


def test_real_scrontab_runs_the_cycle_and_its_watchdog_frees_a_stuck_one(
        lab: Lab, exe: Path, site: Path) -> None:  # noqa: F811 (the fixture)
    assert Path(SCRONTAB).exists(), "the lab has no scrontab: run tests/slurm_lab/up.sh"
    config = site / "librarian.toml"
    printed = as_user(lab, "alice", str(exe), "scrontab", "--config", str(config))
    assert printed.returncode == 0, printed.stderr
    assert f"* * * * * {exe} run --config {config} -q" in printed.stdout
    assert f"* * * * * {exe} watchdog --config {config}" in printed.stdout
    lines = site / "lines.txt"
    lines.write_text(printed.stdout)
    shutil.chown(lines, "alice", "alice")
    installed = as_user(lab, "alice", SCRONTAB, str(lines))
    assert installed.returncode == 0, installed.stderr
    assert as_user(lab, "alice", SCRONTAB, "-l").stdout == printed.stdout  # exactly those lines

    # 1. slurmctld runs the cycle as alice: collect, export, the status file.
    def cycle_done() -> bool:
        steps = status(site).get("steps", {})
        return all(steps.get(s, {}).get("ok") for s in ("collect", "export"))
    wait("a scrontab-run cycle", cycle_done, timeout=240)
    assert (site / "data" / "data_avery.json").exists()
    assert (site / "data" / "site" / "index.html").exists()
    job = run_job(lab)
    assert job
    # A scrontab job that ran is requeued for its next time; the exit code tells how it went.
    _state, code, first_start = wait("sacct to record the run", lambda: (
        r := last_run(lab, job)) and r[0] == "REQUEUED" and r, 120)
    assert code == "0:0"

    doctor = as_user(lab, "alice", "env", f"PATH={Path(SCRONTAB).parent}:/usr/bin:/bin", str(exe),
                     "doctor", "--config", str(config), timeout=180)
    assert "ok      scrontab has Librarian's lines: librarian-run, librarian-watchdog installed" \
        in doctor.stdout, doctor.stdout
    assert "ok      last librarian-run: job " in doctor.stdout
    assert "ok      last librarian-watchdog: job " in doctor.stdout

    # 2. The lock held (a slow cycle before it): the next cycle skips, and its job does not fail.
    with DataLock(site / "data"):
        collected = status(site)["steps"]["collect"]["started"]
        _, code, _ = wait("a run while the lock is held", lambda: (r := last_run(lab, job))
                          and r[0] == "REQUEUED" and r[2] > first_start and r, 150)
        log = site / "data" / "logs" / f"librarian-run-{job}.log"
        wait("the run's log", lambda: "holds" in log.read_text() if log.exists() else False, 60)
        assert code == "0:0"
        assert status(site)["steps"]["collect"]["started"] == collected   # nothing was collected

    # 3. A stuck cycle: the Prolog fails a launch, Slurm requeues and holds the job.
    # slurmd runs the Prolog only on a job's first launch on a node (while its
    # credential is cached, a scrontab job's next runs skip it), so the entries
    # are installed again, which gives them new jobs, and the new run job's
    # first launch is the one that fails.
    installed = as_user(lab, "alice", SCRONTAB, str(lines))
    assert installed.returncode == 0, installed.stderr
    old, job = job, str(wait("the entries' new jobs", lambda: (j := run_job(lab)) != job and j, 60))
    assert int(job) > int(old)
    flag = LAB_DIR / "run" / f"fail-prolog-{job}"
    flag.touch()
    wait("the run job to stick", lambda: "launch failed requeued held" in lab.run(
        "squeue", "--noheader", "-j", job, "--format=%r", check=False).stdout, 150)
    flag.unlink()
    node = os.uname().nodename.split(".")[0]
    lab.run("scontrol", "update", f"nodename={node}", "state=resume")   # Slurm drained it
    stuck_at = time.time()

    # The scrontab-run watchdog cancels it and puts its entry back; scrontab runs it anew.
    dog_logs = site / "data" / "logs"

    def freed() -> bool:
        text = "".join(p.read_text() for p in dog_logs.glob("librarian-watchdog-*.log"))
        return f"cancelled job {job} (librarian-run)" in text and \
            "enabled the scrontab entries of librarian-run again" in text
    wait("the watchdog to free the stuck cycle", freed, timeout=180)
    crontab = as_user(lab, "alice", SCRONTAB, "-l").stdout
    assert "#DISABLED" not in crontab
    assert f"* * * * * {exe} run --config {config} -q" in crontab
    wait("a cycle after the stuck one", lambda: status(site).get("steps", {}).get(
        "collect", {}).get("started", 0) > stuck_at and cycle_done(), timeout=240)
    assert run_job(lab) not in ("", job)   # scrontab made a new job for the entry
