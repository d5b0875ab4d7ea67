"""Helpers for tests against the real Slurm lab (tests/slurm_lab/up.sh).

`find_lab()` finds a running lab or says how to start one; `Lab` submits jobs
as the lab's users, polls accounting, and reads sacct independently of the
collector's parser (epoch times via SLURM_TIME_FORMAT=%s, plain splitting),
so tests compare two different readings of the same database.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(os.environ.get("LIBRARIAN_LAB_DIR", "/var/tmp/librarian-slurm-lab"))
HOW_TO_START = "start it with `sudo tests/slurm_lab/up.sh` (scripts/test.sh does this when run as root)"
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE")


class LabMissing(Exception):
    pass


@dataclass(frozen=True)
class Row:
    """One allocation as sacct reports it, times in epoch seconds (None: Unknown/None)."""

    job_id: str
    user: str
    qos: str
    state: str
    start: int | None
    end: int | None
    elapsed: int
    cpus: int
    gpus: int
    mem_gib: float


def _tres(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


@dataclass(frozen=True)
class Lab:
    folder: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              check=check, timeout=60)

    def submit(self, user: str, qos: str, command: str, *, cpus: int = 1, mem: str = "1G",
               extra: tuple[str, ...] = ()) -> str:
        """sbatch as `user` (root may submit for anyone); returns the job id."""
        out = self.run("sbatch", "--parsable", f"--uid={user}", f"--gid={user}", "-A", "lab",
                       f"--qos={qos}", f"--cpus-per-task={cpus}", f"--mem={mem}",
                       "--chdir=/tmp", "--output=/dev/null", *extra, "--wrap", command)
        return out.stdout.strip().split(";")[0]

    def rows(self, *, job_ids: list[str] | None = None, start: int | None = None,
             end: int | None = None, qos: str = "avery,avery-b") -> list[Row]:
        args = ["sacct", "--allusers", "--allocations", "--duplicates", "--parsable2",
                "--noheader", "--noconvert",
                "--format=JobID,User,QOS,State,Start,End,ElapsedRaw,NCPUS,AllocTRES,NodeList"]
        if job_ids:
            args.append(f"--jobs={','.join(job_ids)}")
        else:
            args += [f"--qos={qos}", f"--starttime={_utc(start)}", f"--endtime={_utc(end)}"]
        env = {**self.env, "SLURM_TIME_FORMAT": "%s", "TZ": "UTC"}
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=60)
        rows = []
        for line in out.stdout.splitlines():
            jid, user, qos_, state, s, e, elapsed, cpus, alloc, nodes = line.split("|")
            tres = _tres(alloc)
            mem = tres.get("mem", "0M")
            # No node: it never ran, whatever Start says (a scrontab job cancelled
            # while it waited has Start = Submit and the wait as ElapsedRaw).
            ran = nodes != "None assigned"
            rows.append(Row(
                job_id=jid, user=user, qos=qos_, state=state.split()[0],
                start=int(s) if s.isdigit() and ran else None,
                end=int(e) if e.isdigit() else None,
                elapsed=int(elapsed) if ran else 0, cpus=int(cpus), gpus=int(tres.get("gres/gpu", 0)),
                mem_gib=float(mem[:-1]) / 1024 if mem.endswith("M") else float(mem) / 1024,
            ))
        return rows

    def wait_until(self, job_ids: list[str], states: tuple[str, ...], timeout: float) -> list[Row]:
        """Poll accounting (never a fixed sleep) until every job is in one of `states`."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(job_ids=job_ids)
            seen = {r.job_id: r for r in rows}
            settled = all(r.end is not None for r in rows) or "RUNNING" in states
            if len(seen) >= len(job_ids) and all(r.state in states for r in rows) and settled:
                return rows
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs {job_ids} not in {states} after {timeout} s: "
                                   f"{[(r.job_id, r.state) for r in rows]}")
            time.sleep(0.5)

    def cancel(self, *job_ids: str) -> None:
        if job_ids:
            self.run("scancel", *job_ids, check=False)


def _utc(epoch: int | None) -> str:
    if epoch is None:
        return "now"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def find_lab() -> Lab:
    env_file = LAB_DIR / "lab.env"
    if not env_file.exists():
        raise LabMissing(f"no Slurm lab at {LAB_DIR}: {HOW_TO_START}")
    env = dict(os.environ)
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
    lab = Lab(folder=LAB_DIR, env=env)
    try:
        ping = lab.run("scontrol", "ping", check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired) as err:
        raise LabMissing(f"the Slurm lab does not answer ({err}): {HOW_TO_START}") from None
    if ping.returncode != 0 or "UP" not in ping.stdout:
        raise LabMissing(f"slurmctld of the lab is down ({ping.stdout.strip()}): {HOW_TO_START}")
    if os.geteuid() != 0:
        raise LabMissing("the lab tests submit jobs for alice, bob and carol: run them as root")
    return lab
