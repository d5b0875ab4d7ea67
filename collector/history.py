"""Daily history: resource-seconds per user and local day over the history
kept, beside the hourly window (pure).

A day is the site's local day, midnight to midnight, so days are 23 or 25
hours long across a daylight-saving change and monthly totals fall in the
months the site reports in. Jobs are counted like the window's bins (a job
from Start to End, a wait from Eligible to Start; collector/binning.py), on a
`DayGrid` of local midnights, and the jobs that started on each day are
counted too (for "jobs per month").

A history is addable: the job store's parts (each cold segment, the hot
records) are binned apart and summed, aligned on their first day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from collector.binning import DayGrid, bin_seconds, fold_names, fold_rows
from collector.jobtable import JobTable
from collector.observables import OBSERVABLES

_N_OBS = len(OBSERVABLES)


def midnights(first: date, n_days: int, tz: str) -> np.ndarray:
    """The local midnights starting `n_days` days from `first`, and the one
    after the last (epoch seconds, n_days + 1 of them)."""
    zone = ZoneInfo(tz)
    days = (first + timedelta(days=k) for k in range(n_days + 1))
    return np.array([datetime(d.year, d.month, d.day, tzinfo=zone).timestamp() for d in days])


def local_date(epoch: float, tz: str) -> date:
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).date()


def history_grid(now: int, days: int, tz: str) -> tuple[date, DayGrid]:
    """The last `days` local days, today (the day holding `now`) the last and
    partial: the first day and the grid."""
    first = local_date(now, tz) - timedelta(days=days - 1)
    return first, DayGrid(midnights(first, days, tz), now)


@dataclass(frozen=True)
class History:
    """Per user and local day from `first`: resource-seconds of each
    observable (observables x users x days) and the jobs started."""

    first: date
    users: tuple[str, ...]
    seconds: np.ndarray
    started: np.ndarray      # (users x days)
    complete_from: int = 0   # days before this are still being read from Slurm (0: none)

    @property
    def n_days(self) -> int:
        return self.seconds.shape[2]

    @classmethod
    def empty(cls, first: date, n_days: int) -> History:
        return cls(first, (), np.zeros((_N_OBS, 0, n_days)), np.zeros((0, n_days)))


def history_of(jobs: JobTable, first: date, grid: DayGrid) -> History:
    """The history of `jobs` (one QoS) on `grid`, whose first day is `first`."""
    binned = bin_seconds(jobs, grid)
    pos = {u: i for i, u in enumerate(binned.users)}
    started = np.zeros((len(binned.users), grid.n_bins))
    ran = ~np.isnan(jobs.start) & (jobs.start >= grid.start) & (jobs.start < grid.now)
    if ran.any() and binned.users:
        rows = np.array([pos.get(jobs.users[u], -1) for u in range(len(jobs.users))],
                        dtype=np.int64)[jobs.user[ran]]
        day = grid.index(jobs.start[ran])
        keep = rows >= 0
        np.add.at(started, (rows[keep], day[keep]), 1.0)
    return History(first, binned.users, binned.seconds, started)


def add_histories(parts: list[History], first: date, n_days: int) -> History:
    """The sum of histories over the days [first, first + n_days), each part
    placed by its own first day (days outside are dropped)."""
    users = tuple(sorted({u for p in parts for u in p.users}))
    pos = {u: i for i, u in enumerate(users)}
    seconds = np.zeros((_N_OBS, len(users), n_days))
    started = np.zeros((len(users), n_days))
    for p in parts:
        if not p.users:
            continue
        offset = (p.first - first).days          # the part's day 0 in the sum's days
        lo, hi = max(0, offset), min(n_days, offset + p.n_days)
        if hi <= lo:
            continue
        rows = np.array([pos[u] for u in p.users])
        seconds[:, rows, lo:hi] += p.seconds[:, :, lo - offset:hi - offset]
        started[rows, lo:hi] += p.started[:, lo - offset:hi - offset]
    return History(first, users, seconds, started)


__all__ = ["History", "add_histories", "history_grid", "history_of", "local_date", "midnights"]


def fold_history(h: History, by: str) -> History:
    """A history per (user, account, partition) folded to one grouping's."""
    names, to = fold_names(h.users, by)
    return History(h.first, names, fold_rows(h.seconds, to, len(names), 1),
                   fold_rows(h.started, to, len(names), 0), h.complete_from)
