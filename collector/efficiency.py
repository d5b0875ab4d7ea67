"""What jobs used of what they held, from sacct's own accounting (pure).

Slurm records, per job step, the CPU time its tasks used (TotalCPU; the
allocation line carries the sum over its steps) and the largest resident set
of any of its tasks (MaxRSS; TRESUsageInMax `mem`), and where the cluster
gathers GPU figures, the GPUs' utilisation and memory (TRESUsageInAve
`gres/gpuutil`, TRESUsageInMax `gres/gpumem`). This module reads those
fields, column-wise with Arrow's kernels (a million-line history has a
hundred thousand step lines), folds the steps into one row per job, and
works out the efficiencies:

  CPU       TotalCPU / (ElapsedRaw x allocated CPUs)
  memory    peak RSS (the largest over the job's steps) / allocated memory
  time      ElapsedRaw / TimelimitRaw
  GPU       gres/gpuutil (ElapsedRaw-weighted over the steps that record it)

A value that is not recorded is NaN, never 0: "not recorded on this cluster"
is an answer of its own. A value that is present but unreadable is counted
(by field) and read as not recorded; the rest of the job still counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.arrow_buffers import EMPTY_STRING, empty_strings, from_numpy, string_bytes, to_numpy
from collector.config_model import EfficiencyConfig
from collector.jobtable import JobTable

# TotalCPU: MM:SS.mmm, HH:MM:SS or D-HH:MM:SS (sacct prints the shortest that fits).
_CPU_TIME = (r"^(?:(?:(?P<days>\d+)-)?(?P<hours>\d+):)?(?P<minutes>\d+):"
             r"(?P<seconds>\d+(?:\.\d+)?)$")
# A memory figure: bytes as a plain number (sacct --noconvert), or with a binary unit.
_SIZE = r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[KMGTPE]?)$"
_UNIT_BYTES = {"": 1.0, "K": 2.0**10, "M": 2.0**20, "G": 2.0**30, "T": 2.0**40,
               "P": 2.0**50, "E": 2.0**60}
GIB = 2.0**30


def _blank(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return to_numpy(pc.match_substring_regex(col, r"^\s*$"))


def _group(parts: pa.Array, name: str) -> pa.Array:
    """One group of extract_regex's matches, "" where the row did not match
    (filled per field: a struct's own fill_null is many times slower)."""
    return pc.struct_field(parts, name).fill_null(EMPTY_STRING)


def _number(field: pa.Array) -> np.ndarray:
    """A regex group as float (an optional group that did not match is 0)."""
    return to_numpy(pc.replace_substring_regex(field, pattern="^$", replacement="0")
                    .cast(pa.float64()))


def cpu_seconds(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """TotalCPU as seconds, and which rows are unreadable (empty is NaN, not bad).

    sacct prints one of three fixed shapes (`MM:SS.mmm`, `HH:MM:SS`,
    `D-HH:MM:SS`), which are read here from the bytes by position, in numpy:
    a million allocation lines' TotalCPU in about 0.15 s,
    where the regex costs about a second. Anything else (a shorter hour, junk)
    goes to the regex, which decides."""
    col = _strings(col)
    data, start, length = string_bytes(col, pad=16)
    end = start + length
    seconds = np.full(len(col), np.nan)
    done = length == 0

    def is_char(pos: np.ndarray, ch: str) -> np.ndarray:
        return data[pos] == ord(ch)

    def number(pos: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        value = np.zeros(len(pos))
        ok = np.ones(len(pos), dtype=bool)
        for k in range(width):
            digit = data[pos + k].astype(np.int16) - 48
            ok &= (digit >= 0) & (digit <= 9)
            value = value * 10 + digit
        return value, ok

    short = (length == 9) & is_char(start + 2, ":") & is_char(start + 5, ".")
    hours = (length == 8) & is_char(start + 2, ":") & is_char(start + 5, ":")
    days = ((length >= 10) & (length <= 14) & is_char(np.maximum(end - 9, 0), "-")
            & is_char(np.maximum(end - 6, 0), ":") & is_char(np.maximum(end - 3, 0), ":"))
    rows = np.flatnonzero(short)
    if len(rows):   # SS.mmm as one number of milliseconds: the same double as float("SS.mmm")
        minutes, ok = number(start[rows], 2)
        secs, good = number(start[rows] + 3, 2)
        millis, fine = number(start[rows] + 6, 3)
        ok &= good & fine
        seconds[rows[ok]] = (minutes * 60.0 + (secs * 1000.0 + millis) / 1000.0)[ok]
        done[rows[ok]] = True
    def clock(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:   # HH:MM:SS at pos
        total, ok = np.zeros(len(pos)), np.ones(len(pos), dtype=bool)
        for offset, scale in ((0, 3600.0), (3, 60.0), (6, 1.0)):
            value, good = number(pos + offset, 2)
            total += value * scale
            ok &= good
        return total, ok

    rows = np.flatnonzero(hours)
    if len(rows):
        total, ok = clock(start[rows])
        seconds[rows[ok]] = total[ok]
        done[rows[ok]] = True
    rows = np.flatnonzero(days)
    if len(rows):
        total, ok = clock(end[rows] - 8)   # HH:MM:SS after the dash
        n_digits = length[rows] - 9
        day = np.zeros(len(rows))
        for k in range(5):            # up to 5 digits of days, read left to right
            more = k < n_digits
            digit = data[start[rows] + np.minimum(k, n_digits - 1)].astype(np.int16) - 48
            ok &= ~more | ((digit >= 0) & (digit <= 9))
            day = np.where(more, day * 10 + digit, day)
        seconds[rows[ok]] = day[ok] * 86400.0 + total[ok]
        done[rows[ok]] = True
    bad = np.zeros(len(col), dtype=bool)
    rest = np.flatnonzero(~done)
    if len(rest):
        value, unreadable = _cpu_seconds_by_regex(col.take(from_numpy(rest, pa.int64())))
        seconds[rest] = value
        bad[rest] = unreadable
    return seconds, bad


def _cpu_seconds_by_regex(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """TotalCPU by the regex: every form the fixed shapes do not cover."""
    parts = pc.extract_regex(col, _CPU_TIME)
    matched = ~to_numpy(parts.is_null())
    seconds = (_number(_group(parts, "days")) * 86400.0
               + _number(_group(parts, "hours")) * 3600.0
               + _number(_group(parts, "minutes")) * 60.0
               + _number(_group(parts, "seconds")))
    blank = _blank(col)
    return np.where(matched, seconds, np.nan), ~matched & ~blank


def sizes_gib(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A memory figure (MaxRSS, or a TRES usage mem=) in GiB, and which rows
    are unreadable (empty is NaN, not bad)."""
    col = _strings(col)
    parts = pc.extract_regex(col, _SIZE)
    matched = ~to_numpy(parts.is_null())
    number = _number(_group(parts, "number"))
    units = _group(parts, "unit").dictionary_encode()
    scale = np.array([_UNIT_BYTES[u] for u in units.dictionary.to_pylist()] or [1.0])
    gib = number * scale[to_numpy(units.indices).astype(np.int64)] / GIB
    return np.where(matched, gib, np.nan), ~matched & ~_blank(col)


def tres_entry(col: pa.Array | pa.ChunkedArray, key: str) -> pa.Array:
    """The text of one entry of a TRES usage string ('cpu=00:01:02,gres/gpuutil=87,
    mem=3203072'): the value after `key=`, empty where the string has none."""
    col = _strings(col)
    pattern = r"(?:^|,)" + key.replace("/", r"\/") + r"=(?P<value>[^,]*)"
    found = pc.extract_regex(col, pattern)
    return _group(found, "value")


def _strings(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    return col.fill_null(EMPTY_STRING)


@dataclass(frozen=True)
class StepUsage:
    """One row per job (per `key`: its allocation line) that has step lines:
    what its steps recorded (NaN: not recorded), and how many unreadable
    values were skipped, by field."""

    key: np.ndarray
    peak_rss_gib: np.ndarray
    gpu_util: np.ndarray      # percent
    gpu_mem_gib: np.ndarray
    total_cpu: np.ndarray     # the steps' TotalCPU summed (the allocation line has it too)
    bad: dict[str, int]


def fold_steps(key: np.ndarray, elapsed: np.ndarray, max_rss: pa.Array,
               tres_max: pa.Array | None, tres_ave: pa.Array | None,
               total_cpu: pa.Array | None) -> StepUsage:
    """Step lines (their job's key, ElapsedRaw and usage fields) → one row
    per job: the peak RSS over its steps, its GPUs' mean utilisation weighted
    by each step's ElapsedRaw, the peak GPU memory, the CPU time summed."""
    n = len(key)
    # An absent field reads as empty strings (from buffers: a Python list
    # would make pyarrow import pandas, a quarter of a second on the collect path).
    nothing = empty_strings(n)
    rss, bad_rss = sizes_gib(max_rss)
    tres_mem, bad_tres_mem = sizes_gib(tres_entry(tres_max if tres_max is not None else nothing,
                                                  "mem"))
    gpu_mem, bad_gpu_mem = sizes_gib(tres_entry(tres_max if tres_max is not None else nothing,
                                                "gres/gpumem"))
    util_text = tres_entry(tres_ave if tres_ave is not None else nothing, "gres/gpuutil")
    util = to_numpy(pc.cast(pc.if_else(pc.match_substring_regex(util_text, r"^\d+(\.\d+)?$"),
                                       util_text, pa.nulls(n, pa.string())), pa.float64()),
                    fill=np.nan)
    bad_util = np.isnan(util) & ~_blank(util_text)
    cpu, bad_cpu = cpu_seconds(total_cpu if total_cpu is not None else nothing)

    jobs, row = np.unique(key, return_inverse=True)
    peak = np.full(len(jobs), np.nan)
    np.fmax.at(peak, row, np.fmax(rss, tres_mem))
    gpu_peak = np.full(len(jobs), np.nan)
    np.fmax.at(gpu_peak, row, gpu_mem)
    recorded = ~np.isnan(util)
    weight = np.where(recorded, np.maximum(elapsed, 1.0), 0.0)
    util_sum = np.bincount(row, weights=np.where(recorded, util, 0.0) * weight,
                           minlength=len(jobs))
    weights = np.bincount(row, weights=weight, minlength=len(jobs))
    with np.errstate(invalid="ignore", divide="ignore"):
        gpu_util = np.where(weights > 0, util_sum / weights, np.nan)
    cpu_known = np.bincount(row, weights=~np.isnan(cpu), minlength=len(jobs)) > 0
    cpu_total = np.where(cpu_known, np.bincount(row, weights=np.nan_to_num(cpu),
                                                minlength=len(jobs)), np.nan)
    bad = {"MaxRSS": int((bad_rss | bad_tres_mem).sum()), "TotalCPU": int(bad_cpu.sum()),
           "GPU usage": int((bad_util | bad_gpu_mem).sum())}
    return StepUsage(jobs, peak, gpu_util, gpu_peak, cpu_total, {k: v for k, v in bad.items() if v})


# --- per user and day ----------------------------------------------------------

# The sums each efficiency is made of, per user and local day of the jobs' End.
# held/used pairs are resource-seconds (GiB-seconds for memory); a job counts
# in a pair only where both of its figures are recorded.
SUMS = ("jobs", "cpu_held", "cpu_used", "mem_held", "mem_used", "time_used", "time_limit",
        "gpu_jobs", "gpu_held", "gpu_used", "gpu_idle_jobs")


@dataclass(frozen=True)
class EfficiencyDays:
    """The ended jobs' sums per (user, local day of End) cell: bounded by
    users x days, whatever the number of jobs (like pressure.WaitDays)."""

    day_starts: np.ndarray      # local midnights, epoch s (pressure.local_days)
    users: tuple[str, ...]
    user: np.ndarray            # per cell
    day: np.ndarray
    sums: dict[str, np.ndarray]  # SUMS -> per cell

    def total(self, cells: np.ndarray) -> dict[str, np.ndarray]:
        """Per user (index into `users`), the sums of the chosen cells (a mask)."""
        n = len(self.users)
        return {k: np.bincount(self.user[cells], weights=v[cells], minlength=n)
                for k, v in self.sums.items()}


def efficiency_days(jobs: JobTable, day_starts: np.ndarray, now: float,
                    since: float = -np.inf) -> EfficiencyDays:
    """The sums of the jobs that ended in [since, now] inside the days, per
    user and local day of End. Running and never-started jobs are not counted."""
    end, start, elapsed = jobs.end, jobs.start, jobs.elapsed
    ended = (~np.isnan(start) & ~np.isnan(end) & (end <= now) & (end >= since) & (elapsed > 0)
             & (end >= day_starts[0] if len(day_starts) else False)
             & (end < day_starts[-1] if len(day_starts) else False))
    rows = np.flatnonzero(ended)
    el = elapsed[rows]
    cpus, mem, gpus = jobs.cpus[rows], jobs.mem_gib[rows], jobs.gpus[rows]
    cpu_used, peak, util = jobs.total_cpu[rows], jobs.peak_rss_gib[rows], jobs.gpu_util[rows]
    limit = jobs.timelimit[rows]
    has_cpu = ~np.isnan(cpu_used) & (cpus > 0)
    has_mem = ~np.isnan(peak) & (mem > 0)
    has_time = ~np.isnan(limit) & (limit > 0)
    gpu_job = gpus > 0
    has_gpu = gpu_job & ~np.isnan(util)
    # Each sum: the jobs whose figures it needs, and its per-job values, made
    # only when summed and never where no job recorded them (a history
    # without usage fields).
    per_job = {
        "jobs": (True, lambda: np.ones(len(rows))),
        "cpu_held": (has_cpu, lambda: np.where(has_cpu, el * cpus, 0.0)),
        "cpu_used": (has_cpu, lambda: np.where(has_cpu, cpu_used, 0.0)),
        "mem_held": (has_mem, lambda: np.where(has_mem, el * mem, 0.0)),
        "mem_used": (has_mem, lambda: np.where(has_mem, el * peak, 0.0)),
        "time_used": (has_time, lambda: np.where(has_time, el, 0.0)),
        "time_limit": (has_time, lambda: np.where(has_time, limit, 0.0)),
        "gpu_jobs": (gpu_job, lambda: gpu_job.astype(np.float64)),
        "gpu_held": (has_gpu, lambda: np.where(has_gpu, el * gpus, 0.0)),
        "gpu_used": (has_gpu, lambda: np.where(has_gpu, el * gpus * np.nan_to_num(util) / 100.0,
                                               0.0)),
        "gpu_idle_jobs": (has_gpu, lambda: (has_gpu & (np.nan_to_num(util) <= 0))
                          .astype(np.float64)),
    }
    n_days = max(len(day_starts) - 1, 1)
    day = _day_of(day_starts, end[rows])
    # Cells (user x day) counted densely over the users present, then the
    # empty ones dropped: no sort of the jobs.
    codes = jobs.user[rows]
    seen = np.zeros(len(jobs.users) or 1, dtype=bool)
    seen[codes] = True
    present = np.flatnonzero(seen)
    lookup = np.cumsum(seen) - 1
    key = lookup[codes] * n_days + day
    size = len(present) * n_days
    dense = {k: np.bincount(key, weights=make(), minlength=size) if np.any(needs) else None
             for k, (needs, make) in per_job.items()}
    cells = np.flatnonzero(np.bincount(key, minlength=size))
    sums = {k: v[cells] if v is not None else np.zeros(len(cells)) for k, v in dense.items()}
    return EfficiencyDays(day_starts=day_starts,
                          users=tuple(jobs.users[i] for i in present.tolist()),
                          user=cells // n_days, day=cells % n_days, sums=sums)


NO_EFFICIENCY = EfficiencyDays(np.zeros(0), (), np.zeros(0, dtype=np.int64),
                               np.zeros(0, dtype=np.int64), {k: np.zeros(0) for k in SUMS})


def add_efficiency_days(a: EfficiencyDays, b: EfficiencyDays, since: float = -np.inf
                        ) -> EfficiencyDays:
    """The cells of both on `a`'s days, summed where a user and day meet twice
    (names, not positions: a name may stand for several users, as "others"
    does in a public export). `b`'s periods may be finer (bins): each goes to
    the day that holds it; those outside `a`'s days, or starting before
    `since`, are dropped."""
    users = tuple(sorted(set(a.users) | set(b.users)))
    pos = {u: i for i, u in enumerate(users)}
    days = a.day_starts
    parts = []
    for part in (a, b):
        if not len(part.user):
            continue
        uid = np.array([pos[u] for u in part.users], dtype=np.int64)[part.user]
        start = part.day_starts[part.day]
        day = np.searchsorted(days, start, side="right") - 1
        on = (day >= 0) & (day < len(days) - 1) & (start >= since)
        parts.append((uid[on], day[on], {k: v[on] for k, v in part.sums.items()}))
    if not parts:
        return EfficiencyDays(days, users, NO_EFFICIENCY.user, NO_EFFICIENCY.day,
                              dict(NO_EFFICIENCY.sums))
    n_days = max(len(days) - 1, 1)
    key = np.concatenate([u * n_days + d for u, d, _ in parts])
    cells, cell = np.unique(key, return_inverse=True)
    sums = {k: np.bincount(cell, weights=np.concatenate([x[k] for _, _, x in parts]),
                           minlength=len(cells)) for k in SUMS}
    return EfficiencyDays(days, users, cells // n_days, cells % n_days, sums)


def _day_of(day_starts: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(day_starts, t, side="right") - 1, 0,
                   max(len(day_starts) - 2, 0)).astype(np.int64)


@dataclass(frozen=True)
class EfficiencyRow:
    """One user's efficiencies over a range (NaN: nothing recorded to say it)."""

    user: str
    jobs: int
    cpu: float
    memory: float
    time: float
    gpu: float
    gpu_jobs: int
    wasted_cpu_hours: float
    wasted_gb_hours: float
    cpu_hours: float
    gb_hours: float
    flags: tuple[str, ...]


def _ratio(used: float, held: float) -> float:
    return used / held if held > 0 else float("nan")


def efficiency_rows(days: EfficiencyDays, first: float, last: float,
                    rules: EfficiencyConfig) -> list[EfficiencyRow]:
    """Per user, over the local days from the one holding `first` to the one
    holding `last`: each efficiency as a weighted sum (total used over total
    held), the wasted hours, and the flags the rules raise. Busiest first."""
    if not len(days.user):
        return []
    lo, hi = _day_of(days.day_starts, np.array([first, last]))
    totals = days.total((days.day >= lo) & (days.day <= hi))
    by_name: dict[str, dict[str, float]] = {}
    for i, name in enumerate(days.users):   # a name may stand for several users ("others")
        mine = by_name.setdefault(name, dict.fromkeys(SUMS, 0.0))
        for k, v in totals.items():
            mine[k] += float(v[i])
    rows = []
    for name, t in by_name.items():
        if not t["jobs"]:
            continue
        cpu, mem = _ratio(t["cpu_used"], t["cpu_held"]), _ratio(t["mem_used"], t["mem_held"])
        time, gpu = _ratio(t["time_used"], t["time_limit"]), _ratio(t["gpu_used"], t["gpu_held"])
        cpu_hours, gb_hours = t["cpu_held"] / 3600.0, t["mem_held"] / 3600.0
        flags = []
        if cpu < rules.cpu_below_percent / 100 and cpu_hours > rules.cpu_over_cpu_hours:
            flags.append("cpu")
        if mem < rules.memory_below_percent / 100 and gb_hours > rules.memory_over_gb_hours:
            flags.append("memory")
        if time < rules.time_below_percent / 100:
            flags.append("time")
        if gpu < rules.gpu_below_percent / 100 or t["gpu_idle_jobs"] > 0:
            flags.append("gpu")
        rows.append(EfficiencyRow(
            user=name, jobs=int(t["jobs"]), cpu=cpu, memory=mem, time=time, gpu=gpu,
            gpu_jobs=int(t["gpu_jobs"]),
            wasted_cpu_hours=max(t["cpu_held"] - t["cpu_used"], 0.0) / 3600.0,
            wasted_gb_hours=max(t["mem_held"] - t["mem_used"], 0.0) / 3600.0,
            cpu_hours=cpu_hours, gb_hours=gb_hours, flags=tuple(flags)))
    return sorted(rows, key=lambda r: (-r.cpu_hours, r.user))


__all__ = ["GIB", "NO_EFFICIENCY", "SUMS", "EfficiencyDays", "EfficiencyRow", "StepUsage",
           "add_efficiency_days", "cpu_seconds", "efficiency_days", "efficiency_rows",
           "fold_steps", "sizes_gib", "tres_entry"]
