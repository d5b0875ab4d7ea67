"""The queue now: one squeue call for every configured QoS, read (pure) into
what each user waits for and why.

sacct's Reason lags squeue's (seen in the lab: a job pending on a group limit
still reads Priority in sacct for a while), so the reasons come from squeue.
The call asks only for pending jobs, one line per array task (--array), of
all configured QoS at once, with the ASCII unit separator (0x1f) after each
field: it cannot appear in a user name, a QoS name, a reason or a TRES string.
`tres-alloc` is, for a pending job, the TRES it asks for (cpu, mem, gres/gpu).

The lines are read one by one: a line with the wrong number of fields or an
unreadable value is counted and skipped; squeue failing or timing out is the
caller's to report (the cycle goes on without the queue).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from collector.reasons import classify, not_eligible
from collector.slurm_formats import parse_size_mib, parse_tres, tres_gpus

SEP = "\x1f"
FIELDS: tuple[str, ...] = ("JobID", "UserName", "QOS", "State", "Reason", "tres-alloc",
                           "SubmitTime")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"   # SLURM_TIME_FORMAT=standard


def build_squeue_args(squeue: str, qos_names: Sequence[str], cluster: str = "") -> list[str]:
    """The argument list for the pending jobs of these QoS (on one cluster; "" = local)."""
    if not qos_names:
        raise ValueError("build_squeue_args needs at least one QoS name")
    args = [squeue, "--noheader", "--array", "--states=PENDING", f"--qos={','.join(qos_names)}",
            "--Format=" + ",".join(f"{f}:{SEP}" for f in FIELDS)]
    if cluster:
        args.append(f"--clusters={cluster}")
    return args


class Pending(NamedTuple):
    """One pending job (or array task) as squeue printed it (a tuple: a queue
    of tens of thousands of tasks is read every cycle)."""

    job_id: int
    user: str
    qos: str
    reason: str
    cpus: float
    gpus: float
    mem_gib: float
    submit: float      # epoch seconds


@dataclass(frozen=True)
class Queue:
    """What squeue printed, read: the pending jobs and the lines skipped."""

    jobs: tuple[Pending, ...] = ()
    lines: int = 0
    bad_lines: int = 0
    bad_line_numbers: tuple[int, ...] = ()

    def of(self, qos: str) -> tuple[Pending, ...]:
        return tuple(j for j in self.jobs if j.qos == qos)


def _epoch(text: str) -> float:
    if len(text) != 19 or text[10] != "T":   # exactly TIME_FORMAT, nothing else
        raise ValueError(f"not a time: {text!r}")
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@functools.lru_cache(maxsize=4096)
def _asks(tres_text: str) -> tuple[float, float, float]:
    """(CPUs, GPUs, GiB) of a TRES string: parsed once per distinct string."""
    tres = parse_tres(tres_text)
    mem = parse_size_mib(tres["mem"]) / 1024.0 if "mem" in tres else 0.0
    return float(tres.get("cpu", "1")), tres_gpus(tres_text) or 0.0, mem


def _line(cells: list[str]) -> Pending:
    job_id, user, qos, state, reason, tres_text, submit = (c.strip() for c in cells)
    if state not in ("PENDING", "PD") or not user or not qos:
        raise ValueError("not a pending job")
    cpus, gpus, mem = _asks(tres_text)
    return Pending(job_id=int(job_id.split("_", 1)[0]), user=user, qos=qos,
                   reason=reason.strip("()"), cpus=cpus, gpus=gpus, mem_gib=mem,
                   submit=_epoch(submit))


def parse_squeue(data: bytes, max_numbers: int = 10) -> Queue:
    """Read squeue's lines (times in UTC: run with collector/slurm.py's environment).
    'CLUSTER: name' lines, which --clusters adds, are not jobs."""
    text = data.decode("utf-8", "replace")
    jobs, bad, lines = [], [], 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.startswith("CLUSTER: "):
            continue
        lines += 1
        cells = raw.split(SEP)
        if cells and not cells[-1].strip():
            cells = cells[:-1]   # every field ends with the separator
        try:
            if len(cells) != len(FIELDS):
                raise ValueError("wrong number of fields")
            jobs.append(_line(cells))
        except (ValueError, KeyError):
            bad.append(number)
    return Queue(tuple(jobs), lines, len(bad), tuple(bad[:max_numbers]))


@dataclass(frozen=True)
class QueueRow:
    """One user's pending jobs in one QoS."""

    user: str
    jobs: int              # waiting for resources (not held)
    cpus: float
    gpus: float
    mem_gib: float
    longest_wait: float    # seconds since the oldest waiting job's submission
    reason: str            # the reason most of the waiting jobs give (Slurm's word)
    reason_words: str
    held: int              # held, begin time in the future, or a dependency
    reasons: dict[str, int] = field(default_factory=dict)


def queue_rows(jobs: Sequence[Pending], now: float) -> list[QueueRow]:
    """Per user: what waits and why, most CPUs first (pure)."""
    by_user: dict[str, list[Pending]] = {}
    for j in jobs:
        by_user.setdefault(j.user, []).append(j)
    rows = []
    for user, mine in by_user.items():
        waiting = [j for j in mine if not not_eligible(j.reason)]
        counts: dict[str, int] = {}
        for j in waiting or mine:
            counts[j.reason] = counts.get(j.reason, 0) + 1
        main = max(sorted(counts), key=lambda r: counts[r]) if counts else ""
        rows.append(QueueRow(
            user=user, jobs=len(waiting), cpus=sum(j.cpus for j in waiting),
            gpus=sum(j.gpus for j in waiting), mem_gib=sum(j.mem_gib for j in waiting),
            longest_wait=max((now - j.submit for j in waiting), default=0.0),
            reason=main, reason_words=classify(main)[1], held=len(mine) - len(waiting),
            reasons=counts))
    rows.sort(key=lambda r: (-r.cpus, -r.jobs, r.user))
    return rows


def seen_reasons(jobs: Sequence[Pending]) -> tuple[np.ndarray, tuple[str, ...]]:
    """(JobIDRaw, reason) of every pending job: what the job store records."""
    return np.array([j.job_id for j in jobs], dtype=np.int64), tuple(j.reason for j in jobs)
