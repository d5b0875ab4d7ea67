"""The watchdog and the scrontab lines against the real Slurm lab, run as the job user.

Debian ships no `scrontab` binary, so the printed lines are checked the way
the lab can: each `#SCRON` option set is accepted by `sbatch --test-only`
(scrontab parses the same options), and each cron line's command runs as the
user, as cron or scrontab would run it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.slurm_lab.lab import Lab

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[1]
SHARED = Path("/var/tmp/librarian-lab-install")  # a world-readable copy of this checkout




def as_user(lab: Lab, user: str, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", "env", f"SLURM_CONF={lab.env['SLURM_CONF']}",
                           "PATH=/usr/bin:/bin", "HOME=/tmp", *command],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def exe(lab: Lab) -> Path:
    """A `librarian` the job users can execute: this checkout's own if they can
    reach it (as on a cluster, where it lives in a shared folder), else a copy
    of the checkout installed the README's way in a world-readable folder."""
    mine = Path(sys.executable).with_name("librarian")
    if as_user(lab, "alice", str(mine), "--version").returncode == 0:
        return mine
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        target = SHARED / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / rel).is_file() or (REPO / rel).is_symlink():
            shutil.copy2(REPO / rel, target, follow_symlinks=False)
    subprocess.run(["bash", str(SHARED / "scripts" / "install.sh")], cwd=SHARED, check=True,
                   timeout=900, env={**os.environ, "LIBRARIAN_VENV": str(SHARED / ".venv")})
    subprocess.run(["chmod", "-R", "a+rX", str(SHARED)], check=True)
    return SHARED / ".venv" / "bin" / "librarian"


@pytest.fixture
def alice_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = Path(f"/var/tmp/librarian-alice-{os.getpid()}-{time.monotonic_ns()}")
    site.mkdir(mode=0o755)
    (site / "librarian.toml").write_text(
        '[site]\nname = "Lab"\ntimezone = "UTC"\ndata_dir = "data"\n'
        "[collect]\nbin_seconds = 60\nwindow_days = 1\nhistory_days = 0\n"
        "[ops]\nwatchdog_wait_seconds = 3\n"
        '[[qos]]\nname = "avery"\n[[qos]]\nname = "avery-b"\n')
    shutil.chown(site, "alice", "alice")
    shutil.chown(site / "librarian.toml", "alice", "alice")
    yield site
    shutil.rmtree(site, ignore_errors=True)


def squeue_reason(lab: Lab, job: str) -> str:
    out = lab.run("squeue", "--noheader", "--jobs", job, "--format=%T|%r", check=False).stdout.strip()
    return out


def wait_for_reason(lab: Lab, job: str, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        reason = squeue_reason(lab, job)
        if re.search(pattern, reason):
            return reason
        assert time.monotonic() < deadline, f"job {job}: {reason!r} never matched {pattern!r}"
        time.sleep(0.5)


def test_watchdog_frees_only_the_callers_stuck_librarian_jobs(lab: Lab, exe: Path,
                                                              alice_site: Path) -> None:
    s = lab.submit
    user_held = s("alice", "avery", "sleep 2", extra=("--job-name=librarian-run", "--hold"))
    admin_held = s("alice", "avery", "sleep 2", extra=("--job-name=librarian-watchdog", "--hold"))
    # Held again by root: an admin hold alice cannot release. Never release it first: a
    # released job can start (and end) before the hold lands.
    lab.run("scontrol", "hold", admin_held)
    other_held = s("alice", "avery", "sleep 2", extra=("--job-name=my-analysis", "--hold"))
    healthy = s("alice", "avery-b", "sleep 2", cpus=20, extra=("--job-name=librarian-run",))
    bobs = s("bob", "avery", "sleep 2", extra=("--job-name=librarian-run", "--hold"))
    jobs = [user_held, admin_held, other_held, healthy, bobs]
    try:
        wait_for_reason(lab, user_held, r"PENDING\|JobHeldUser")
        wait_for_reason(lab, admin_held, r"PENDING\|JobHeldAdmin")
        wait_for_reason(lab, bobs, r"PENDING\|JobHeldUser")

        dry = as_user(lab, "alice", str(exe), "watchdog", "--config",
                      str(alice_site / "librarian.toml"), "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"would release job {user_held} (librarian-run)" in dry.stderr
        assert "JobHeldUser" in squeue_reason(lab, user_held)  # nothing was done

        out = as_user(lab, "alice", str(exe), "watchdog", "--config",
                      str(alice_site / "librarian.toml"))
        assert out.returncode == 0, out.stderr
        assert f"released job {user_held} (librarian-run)" in out.stderr
        assert f"cancelled job {admin_held} (librarian-watchdog)" in out.stderr
        assert "released 1, cancelled 1 stuck job(s)" in out.stdout

        assert "Held" not in squeue_reason(lab, user_held)       # released: runs or ran
        # Accounting learns of the cancel a moment later: poll, never a fixed sleep.
        (cancelled,) = lab.wait_until([admin_held], ("CANCELLED",), timeout=30)
        assert cancelled.elapsed == 0  # it never ran
        assert "JobHeldUser" in squeue_reason(lab, other_held)   # her other work: untouched
        assert "Held" not in squeue_reason(lab, healthy)         # healthy pending: untouched
        assert squeue_reason(lab, healthy).startswith("PENDING")
        assert "JobHeldUser" in squeue_reason(lab, bobs)         # another user's: untouched
    finally:
        lab.cancel(*jobs)


def test_scrontab_lines_are_accepted_and_run_the_cycle_as_the_user(lab: Lab, exe: Path,
                                                                   alice_site: Path) -> None:
    config = alice_site / "librarian.toml"
    printed = as_user(lab, "alice", str(exe), "scrontab", "--config", str(config))
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    directives = [ln.removeprefix("#SCRON ").split() for ln in lines if ln.startswith("#SCRON ")]
    commands = [ln.split(None, 5)[5] for ln in lines if re.match(r"^\*/\d+ \* \* \* \* ", ln)]
    assert len(directives) == 2
    assert len(commands) == 2
    for options in directives:  # scrontab takes sbatch's options
        test = as_user(lab, "alice", "sbatch", "--test-only", "-A", "lab", "--qos=avery",
                       *options, "--wrap", "true")
        assert test.returncode == 0, test.stderr
        assert "to start at" in test.stderr
    run = as_user(lab, "alice", "sh", "-c", commands[0], timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (alice_site / "data" / "data_avery.json").exists()
    assert (alice_site / "data" / "site" / "index.html").exists()
    status = (alice_site / "data" / "status.json").read_text()
    assert '"ok": true' in status
    watchdog = as_user(lab, "alice", "sh", "-c", commands[1])
    assert watchdog.returncode == 0, watchdog.stderr


def test_doctor_is_happy_with_the_lab(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "librarian.toml").write_text(
        '[[qos]]\nname = "avery"\n[[qos]]\nname = "avery-b"\n[[qos]]\nname = "no-such-qos"\n')
    exe = Path(sys.executable).with_name("librarian")
    out = subprocess.run([str(exe), "doctor", "--config", str(tmp_path / "librarian.toml")],
                         env=lab.env, capture_output=True, text=True, check=False, timeout=120)
    assert "ok      sacct answers" in out.stdout
    assert "ok      sacctmgr answers" in out.stdout
    assert "ok      squeue answers" in out.stdout
    assert "PROBLEM configured QoS exist: unknown to Slurm: no-such-qos" in out.stdout
    assert out.returncode == 1
