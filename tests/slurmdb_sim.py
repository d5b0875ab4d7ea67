"""A model of slurmdbd answering sacct over a synthetic job history, for the
incremental-collection proofs (the real Slurm lab test does the same with the
real thing, but can only run minutes of history).

`SlurmDb` is a runner for `collect(..., runner=db)`: it reads the sacct
arguments (--starttime, --endtime, --qos, --clusters, --jobs) and prints what
sacct would print at `db.clock`: each record as it is known then (pending,
running with End=Unknown, or ended), selected when it was eligible or running
at any time in [start, end] — sacct's rule without --state. A record's end
reaches the database `lands` seconds late, as when slurmctld queues records
while slurmdbd is away.

A requeued job is two records with the same JobIDRaw: the first ends REQUEUED
at the requeue, the second is submitted then (Slurm gives it a new Submit,
which is what keys it in slurmdbd and in the store).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from collector.sacct import FIELDS, USAGE_FIELDS, USAGE_QUERY_FIELDS
from collector.squeue import SEP


@dataclass(frozen=True)
class Record:
    job_id: int
    submit: int
    user: str
    qos: str
    start: int | None          # None: never starts
    end: int | None            # None: does not end within the history
    state: str = "COMPLETED"   # the final state
    cpus: int = 1
    gpus: int = 0
    mem_mib: int = 1024
    cluster: str = ""
    lands: int = 0             # seconds between the end and slurmdbd knowing it
    held: bool = False         # held while pending (Eligible Unknown, JobHeldUser)
    timelimit_min: int = 0     # 0: no time limit (Partition_Limit)

    def reason(self, started: bool) -> str:
        return "None" if started else ("JobHeldUser" if self.held else "Priority")

    def used(self, elapsed: int) -> tuple[int, int]:
        """(CPU seconds, peak RSS in bytes) this record's job used over `elapsed`:
        a share of what it held fixed by its id, so any cycle can check it."""
        return (self.cpus * elapsed * (self.job_id % 10) // 10,
                self.mem_mib * 2**20 * (self.job_id % 7 + 1) // 8)


def _t(epoch: int | None) -> str:
    if epoch is None:
        return "Unknown"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _value(args: list[str], flag: str) -> str | None:
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _cpu_time(seconds: int) -> str:
    """TotalCPU as sacct prints it: D-HH:MM:SS, HH:MM:SS or MM:SS.mmm."""
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d}-{h:02d}:{m:02d}:{sec:02d}"
    if h:
        return f"{h:02d}:{m:02d}:{sec:02d}"
    return f"{m:02d}:{sec:02d}.000"


def _epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


@dataclass
class SlurmDb:
    records: list[Record]
    clock: int = 0
    calls: list[list[str]] = field(default_factory=list)
    rows_printed: int = 0
    fail: bool = False

    def known(self, r: Record, at: int) -> tuple[int | None, int | None, str] | None:
        """(start, end, state) of a record as the database has it at `at`."""
        if r.submit > at:
            return None
        end_known = r.end is not None and r.end + r.lands <= at
        started = r.start is not None and r.start <= at and (r.end is None or r.start <= r.end)
        if end_known:
            return (r.start if started else None), r.end, r.state
        return (r.start if started else None), None, "RUNNING" if started else "PENDING"

    def answer(self, args: list[str], with_steps: bool = False) -> bytes:
        """sacct's answer; `with_steps`: as a saved file of the same query
        without --allocations would hold it, each ended record's usage and a
        batch step line (the full reference of the usage proofs)."""
        if "--allocations" not in args:
            return self.steps(args)
        fields = (*FIELDS, *USAGE_FIELDS) if with_steps else FIELDS
        start = _epoch(_value(args, "--starttime") or "1970-01-01T00:00:00")
        end = _epoch(_value(args, "--endtime") or _t(self.clock))
        qos = set((_value(args, "--qos") or "").split(","))
        cluster = _value(args, "--clusters") or ""
        ids = _value(args, "--jobs")
        wanted = {int(j) for j in ids.split(",")} if ids else None
        lines = ["|".join(fields)]
        for r in self.records:
            if r.qos not in qos or r.cluster != cluster:
                continue
            if wanted is not None and r.job_id not in wanted:
                continue
            view = self.known(r, self.clock)
            if view is None:
                continue
            s, e, state = view
            if r.submit > end or (e is not None and e < start):
                continue
            elapsed = 0 if s is None else (e if e is not None else self.clock) - s
            alloc = f"billing={r.cpus},cpu={r.cpus},mem={r.mem_mib}M,node=1"
            if r.gpus:
                alloc += f",gres/gpu={r.gpus}"
            values = {
                "JobIDRaw": str(r.job_id), "JobID": str(r.job_id), "User": r.user,
                "QOS": r.qos, "State": state, "Submit": _t(r.submit), "Start": _t(s),
                "End": _t(e), "ElapsedRaw": str(max(elapsed, 0)), "NNodes": "1",
                "NCPUS": str(r.cpus), "ReqMem": f"{r.mem_mib}M",
                "ReqTRES": f"billing={r.cpus},cpu={r.cpus},mem={r.mem_mib}M,node=1",
                "AllocTRES": alloc if s is not None else "",
                "Eligible": "Unknown" if r.held and s is None else _t(r.submit),
                "ReqCPUS": str(r.cpus), "Reason": r.reason(s is not None),
                "TimelimitRaw": str(r.timelimit_min) if r.timelimit_min else "Partition_Limit",
                # u1 charges a second account for odd jobs; a pending job may list two
                # partitions (it counts under the first until it starts in one).
                "Account": "avery-lab" if r.user == "u1" and r.job_id % 2 else "avery",
                "Partition": ("gpu" if r.gpus else "hpg-default") if s is not None
                else ("hpg-default,gpu" if r.job_id % 3 == 0 else "hpg-default"),
            }
            used = r.used(e - s) if s is not None and e is not None else None
            values.update(dict.fromkeys(USAGE_FIELDS, ""))
            if used is not None:
                values["TotalCPU"] = _cpu_time(used[0])
            lines.append("|".join(values[f] for f in fields))
            if with_steps and used is not None:
                step = {**dict.fromkeys(fields, ""), "JobIDRaw": f"{r.job_id}.batch",
                        "JobID": f"{r.job_id}.batch", "State": state, "Submit": values["Submit"],
                        "Start": values["Start"], "End": values["End"],
                        "ElapsedRaw": values["ElapsedRaw"], "NNodes": "1",
                        "NCPUS": values["NCPUS"], "TotalCPU": values["TotalCPU"],
                        "MaxRSS": str(used[1]), "TRESUsageInMax": f"mem={used[1]}"}
                lines.append("|".join(step[f] for f in fields))
        self.rows_printed += len(lines) - 1
        return ("\n".join(lines) + "\n").encode()

    def steps(self, args: list[str]) -> bytes:
        """The usage query's answer (sacct.build_usage_args): each ended
        record's allocation line and a batch step with what it used
        (`Record.used`), by id or for the records active in a time span."""
        ids = _value(args, "--jobs")
        wanted = {int(j) for j in ids.split(",")} if ids else None
        start = _epoch(_value(args, "--starttime") or "1970-01-01T00:00:00")
        end = _epoch(_value(args, "--endtime") or _t(self.clock))
        qos = set((_value(args, "--qos") or "").split(","))
        cluster = _value(args, "--clusters") or ""
        lines = ["|".join(USAGE_QUERY_FIELDS)]
        for r in self.records:
            view = self.known(r, self.clock)
            if r.cluster != cluster or view is None:
                continue
            if wanted is not None and r.job_id not in wanted:
                continue
            s, e, _ = view
            if wanted is None and (r.qos not in qos or r.submit > end
                                   or (e is not None and e < start)):
                continue
            if s is None or e is None:
                lines.append(f"{r.job_id}|{r.job_id}|{_t(r.submit)}|0||||")
                continue
            cpu, rss = r.used(e - s)
            lines.append(f"{r.job_id}|{r.job_id}|{_t(r.submit)}|{e - s}|{_cpu_time(cpu)}|||")
            lines.append(f"{r.job_id}.batch|{r.job_id}.batch|{_t(r.submit)}|{e - s}|"
                         f"{_cpu_time(cpu)}|{rss}|mem={rss}|")
        self.rows_printed += len(lines) - 1
        return ("\n".join(lines) + "\n").encode()

    def queue(self, args: list[str]) -> bytes:
        """squeue's answer (collector/squeue.py's format): the pending records now."""
        qos = set((_value(args, "--qos") or "").split(","))
        cluster = _value(args, "--clusters") or ""
        lines = []
        for r in self.records:
            view = self.known(r, self.clock)
            if r.qos not in qos or r.cluster != cluster or view is None or view[2] != "PENDING":
                continue
            tres = f"cpu={r.cpus},mem={r.mem_mib}M,node=1" + (f",gres/gpu={r.gpus}" if r.gpus else "")
            cells = [str(r.job_id), r.user, r.qos, "PENDING", r.reason(False), tres, _t(r.submit)]
            lines.append("".join(c + SEP for c in cells))
        return "".join(line + "\n" for line in lines).encode()

    def __call__(self, args: list[str], **_: object) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(list(args))
        if self.fail:
            return subprocess.CompletedProcess(args, 1, b"", b"sacct: error: slurmdbd: Connection refused\n")
        if args[0].endswith("squeue"):
            return subprocess.CompletedProcess(args, 0, self.queue(list(args)), b"")
        if not args[0].endswith("sacct"):
            return subprocess.CompletedProcess(args, 1, b"", f"{args[0]}: not simulated\n".encode())
        return subprocess.CompletedProcess(args, 0, self.answer(list(args)), b"")


def history(seed: int, t0: int, t1: int, n_jobs: int, *, users: int = 6,
            qos: tuple[str, ...] = ("avery", "avery-b"), clusters: tuple[str, ...] = ("",),
            max_lag: int = 0) -> list[Record]:
    """Random records submitted in [t0, t1]: short and long jobs, some that
    never start, some cancelled while pending, some still running at t1,
    requeued jobs (two records, one JobIDRaw), and ends that land late."""
    rng = np.random.default_rng(seed)
    out: list[Record] = []
    job_id = 1000
    for _ in range(n_jobs):
        job_id += 1
        submit = int(rng.integers(t0, t1))
        wait = int(rng.choice([0, 60, 900, 4 * 3600]))
        run = int(rng.choice([30, 600, 3600, 5 * 3600, 30 * 3600, 3 * 86400]))
        user = f"u{int(rng.integers(users))}"
        q = str(rng.choice(qos))
        cluster = str(rng.choice(clusters))
        cpus, gpus = int(rng.integers(1, 33)), int(rng.choice([0, 0, 1, 2]))
        mem = int(rng.choice([512, 4096, 65536]))
        lag = int(rng.integers(0, max_lag + 1)) if max_lag and rng.random() < 0.3 else 0
        kind = rng.random()
        common = dict(user=user, qos=q, cpus=cpus, gpus=gpus, mem_mib=mem, cluster=cluster,
                      lands=lag)
        if kind < 0.05:      # never starts (pending to the end); every third one held
            out.append(Record(job_id, submit, start=None, end=None, state="PENDING",
                              held=job_id % 3 == 0, **common))
        elif kind < 0.10:    # cancelled while pending
            out.append(Record(job_id, submit, start=None, end=submit + wait + 60,
                              state="CANCELLED", **common))
        elif kind < 0.13:    # still running when the history ends
            out.append(Record(job_id, submit, start=submit + wait, end=None, state="RUNNING",
                              **common))
        elif kind < 0.20:    # requeued once: two records
            first_end = submit + wait + run // 2 + 1
            out.append(Record(job_id, submit, start=submit + wait, end=first_end,
                              state="REQUEUED", **common))
            out.append(Record(job_id, first_end, start=first_end + 120,
                              end=first_end + 120 + run, state="COMPLETED", **common))
        else:
            state = str(rng.choice(["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED"]))
            out.append(Record(job_id, submit, start=submit + wait, end=submit + wait + run,
                              state=state, **common))
    return out
