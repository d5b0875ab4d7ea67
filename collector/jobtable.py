"""The job table: job allocations as typed numpy columns (pure).

What the parser makes of sacct's text, what the job store keeps, and what
the binning sums. Names that repeat (users, QoS, states) are int codes into
small tuples of names, so filtering and grouping are numpy operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

FLOAT_COLUMNS = ("submit", "start", "end", "elapsed", "nnodes", "cpus", "gpus", "mem_gib",
                 "eligible", "timelimit", "req_cpus", "req_gpus", "req_mem_gib", "tasks",
                 "reasons_seen", "total_cpu", "peak_rss_gib", "gpu_util", "gpu_mem_gib",
                 "usage_read")
# What a job used (collector/efficiency.py), NaN until recorded: a table without
# them (a saved file of allocation lines only) reads as "not recorded".
USAGE_COLUMNS = ("total_cpu", "peak_rss_gib", "gpu_util", "gpu_mem_gib")
CODE_COLUMNS = (("user", "users"), ("qos", "qos_names"), ("state", "states"),
                ("reason", "reasons"), ("account", "accounts"), ("partition", "partitions"))
COLUMNS = ("job_id", "user", "qos", "state", "reason", "account", "partition", *FLOAT_COLUMNS)
_NO_CODES = np.zeros(0, dtype=np.int64)
# Binning sums per (user, account, partition) under one name, so each grouping
# is a fold of the same sums (collector/binning.py: `fold`); a Slurm name never
# holds the ASCII unit separator.
COMBO_SEP = "\x1f"
# What the charts and tables may be grouped by: the job's user, Slurm account or
# partition (the one it started in; the first it lists while pending).
GROUPINGS = ("user", "account", "partition")


@dataclass(frozen=True)
class JobTable:
    """Job allocations as columns. `user`, `qos` and `state` are int codes into
    `users`, `qos_names` and `states`; times are epoch seconds, NaN for
    Unknown/None; `job_id` is JobIDRaw; `mem_gib` is GiB; states drop the
    'by UID' of 'CANCELLED by 123'.

    What a waiting job asks for: `req_cpus` (ReqCPUS), `req_gpus` and
    `req_mem_gib` (ReqTRES), per task; `tasks` is the number of array tasks
    a pending array row stands for (1 otherwise). `eligible` is Eligible
    (NaN: Unknown), `timelimit` TimelimitRaw in seconds (NaN: none).
    `reason` is the last pending reason seen (sacct's Reason, or squeue's
    at a cycle), `reasons_seen` the bits (collector/reasons.py) of every
    reason seen while it waited.

    What an ended job used, from its steps (NaN: not recorded): `total_cpu`
    (TotalCPU, s), `peak_rss_gib` (the largest MaxRSS of its steps),
    `gpu_util` (percent) and `gpu_mem_gib`; `usage_read` when its steps were
    read (NaN: not yet; each job's are asked once, after it ends)."""

    job_id: np.ndarray
    user: np.ndarray
    qos: np.ndarray
    state: np.ndarray
    submit: np.ndarray
    start: np.ndarray
    end: np.ndarray
    elapsed: np.ndarray
    nnodes: np.ndarray
    cpus: np.ndarray
    gpus: np.ndarray
    mem_gib: np.ndarray
    eligible: np.ndarray
    timelimit: np.ndarray
    req_cpus: np.ndarray
    req_gpus: np.ndarray
    req_mem_gib: np.ndarray
    tasks: np.ndarray
    reasons_seen: np.ndarray
    reason: np.ndarray
    total_cpu: np.ndarray
    peak_rss_gib: np.ndarray
    gpu_util: np.ndarray
    gpu_mem_gib: np.ndarray
    usage_read: np.ndarray
    account: np.ndarray = field(default_factory=lambda: _NO_CODES)  # into `accounts`
    partition: np.ndarray = field(default_factory=lambda: _NO_CODES)  # into `partitions`
    users: tuple[str, ...] = ()
    qos_names: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A table made without its account and partition (tests, synthetic
        # data, a saved file without the fields) has them not known: "".
        for col, attr in (("account", "accounts"), ("partition", "partitions")):
            if len(getattr(self, col)) != len(self.job_id):
                object.__setattr__(self, col, np.zeros(len(self.job_id), dtype=np.int64))
                object.__setattr__(self, attr, ("",))

    def __len__(self) -> int:
        return len(self.job_id)

    @classmethod
    def empty(cls) -> JobTable:
        ints = np.zeros(0, dtype=np.int64)
        floats = np.zeros(0, dtype=np.float64)
        columns: dict[str, Any] = dict.fromkeys(FLOAT_COLUMNS, floats)
        return cls(job_id=ints, user=ints, qos=ints, state=ints, reason=ints, **columns)

    @classmethod
    def build(cls, **given: Any) -> JobTable:
        """A table from the allocation columns, the queue's filled in as a saved
        file without them reads (eligible at Submit, asking what was allocated,
        one task, no reason, no time limit): for tests and synthetic data."""
        n = len(given["job_id"])
        defaults: dict[str, Any] = {
            "eligible": np.full(n, np.nan), "timelimit": np.full(n, np.nan),
            "req_cpus": given.get("cpus"), "req_gpus": given.get("gpus"),
            "req_mem_gib": given.get("mem_gib"), "tasks": np.ones(n),
            "reasons_seen": np.zeros(n), "reason": np.zeros(n, dtype=np.int64),
            "reasons": ("",), **{c: np.full(n, np.nan) for c in (*USAGE_COLUMNS, "usage_read")},
        }
        return cls(**{**defaults, **given})

    def column_at(self, name: str, rows: np.ndarray) -> np.ndarray:
        """One column's values at `rows`, computed on those rows only for the
        derived ones the used observables sum: `used_cpus`, the CPUs used on
        average over the run (TotalCPU / ElapsedRaw), and `used_mem_gib`, the
        peak memory held over the whole run; 0 where not recorded (running,
        not yet read, or not gathered by the cluster)."""
        if name == "used_cpus":
            total_cpu, elapsed = self.total_cpu[rows], self.elapsed[rows]
            ok = ~np.isnan(total_cpu) & (elapsed > 0)
            return np.where(ok, total_cpu / np.where(ok, elapsed, 1.0), 0.0)
        if name == "used_mem_gib":
            return np.nan_to_num(self.peak_rss_gib[rows], nan=0.0)
        return getattr(self, name)[rows]

    def take(self, rows: np.ndarray) -> JobTable:
        """The rows selected by a boolean mask or an index array (codes keep their names)."""
        columns = {name: getattr(self, name)[rows] for name in COLUMNS}
        return JobTable(**columns, users=self.users, qos_names=self.qos_names, states=self.states,
                        reasons=self.reasons, accounts=self.accounts, partitions=self.partitions)

    def combined(self) -> JobTable:
        """The table with its `user` codes replaced by one per (user, account,
        partition) present, named "user<US>account<US>partition"."""
        n_acc, n_part = max(len(self.accounts), 1), max(len(self.partitions), 1)
        key = (self.user * n_acc + self.account) * n_part + self.partition
        space = max(len(self.users), 1) * n_acc * n_part
        # A lookup over the possible keys is O(rows + space) without a sort:
        # worth it while the space is small beside the rows. A QoS's few rows
        # among a site's many users (names are the site's, space its users x
        # accounts x partitions) sort instead: O(rows log rows), never O(site).
        if space <= min(1 << 24, 4 * len(key)):
            seen = np.bincount(key, minlength=space) > 0
            present = np.flatnonzero(seen)
            lookup = np.cumsum(seen) - 1
            code = lookup[key]
        else:
            present, code = np.unique(key, return_inverse=True)
        names = tuple(COMBO_SEP.join((self.users[k // (n_acc * n_part)],
                                      self.accounts[(k // n_part) % n_acc] if self.accounts
                                      else "",
                                      self.partitions[k % n_part] if self.partitions else ""))
                      for k in present.tolist())
        return replace(self, user=code.astype(np.int64), users=names)

    def grouped(self, by: str) -> JobTable:
        """The table with its `user` codes and names replaced by the account's
        or the partition's (`by` in GROUPINGS): binning it sums per group."""
        if by == "user":
            return self
        col, attr = {"account": ("account", "accounts"),
                     "partition": ("partition", "partitions")}[by]
        return replace(self, user=getattr(self, col), users=getattr(self, attr))

    def qos_rows(self) -> dict[str, np.ndarray]:
        """The row indices of each QoS, in table order, in one pass (a stable
        sort by QoS code)."""
        if not len(self):
            return {}
        order = np.argsort(self.qos, kind="stable")
        counts = np.bincount(self.qos, minlength=len(self.qos_names))
        edges = np.concatenate(([0], np.cumsum(counts)))
        return {name: order[edges[i]:edges[i + 1]]
                for i, name in enumerate(self.qos_names) if counts[i]}

    def by_qos(self) -> dict[str, JobTable]:
        """The rows of each QoS: what lets per-QoS work cost the QoS's own
        rows, never all rows per QoS."""
        return {name: self.take(rows) for name, rows in self.qos_rows().items()}

    def to_frame(self) -> Any:
        """A pandas DataFrame with names instead of codes (for tests and exploring)."""
        import pandas as pd

        def names(codes: np.ndarray, table: tuple[str, ...]) -> pd.Categorical:
            return pd.Categorical.from_codes(codes, categories=list(table)) if table else \
                pd.Categorical([])

        frame = pd.DataFrame({
            "job_id": self.job_id, "user": names(self.user, self.users),
            "qos": names(self.qos, self.qos_names), "state": names(self.state, self.states),
            "reason": names(self.reason, self.reasons),
            "account": names(self.account, self.accounts),
            "partition": names(self.partition, self.partitions),
        })
        for name in FLOAT_COLUMNS:
            frame[name] = getattr(self, name)
        return frame


def concat(tables: Sequence[JobTable]) -> JobTable:
    """The rows of all tables, in order, with their name tables unified."""
    tables = [t for t in tables if len(t)]
    if not tables:
        return JobTable.empty()
    if len(tables) == 1:
        return tables[0]
    names: dict[str, Any] = {}
    codes: dict[str, Any] = {}
    for col, table_attr in CODE_COLUMNS:
        union = tuple(sorted(set().union(*(getattr(t, table_attr) for t in tables))))
        position = {n: i for i, n in enumerate(union)}
        parts = []
        for t in tables:
            lookup = np.array([position[n] for n in getattr(t, table_attr)] or [0], dtype=np.int64)
            parts.append(lookup[getattr(t, col)])
        names[table_attr] = union
        codes[col] = np.concatenate(parts)
    columns: dict[str, Any] = {c: np.concatenate([getattr(t, c) for t in tables])
                               for c in COLUMNS if c not in codes}
    return JobTable(**columns, **codes, **names)


def compact_names(jobs: JobTable) -> JobTable:
    """Drop user/QoS/state names no row uses any more (after pruning)."""
    out: dict[str, Any] = {}
    for col, attr in CODE_COLUMNS:
        names = getattr(jobs, attr)
        used = np.bincount(getattr(jobs, col), minlength=len(names)) > 0
        remap = np.cumsum(used) - 1
        out[col] = remap[getattr(jobs, col)] if len(jobs) else getattr(jobs, col)
        out[attr] = tuple(n for n, u in zip(names, used.tolist(), strict=True) if u)
    rest = {c: getattr(jobs, c) for c in COLUMNS if c not in out}
    return JobTable(**rest, **out)
