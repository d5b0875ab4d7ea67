"""Jobs + window -> per-user usage per bin (pure, vectorised).

A bin's value is the time average of what was allocated during it: a job
counts from Start to End (still running: until now), clipped to the window
and to now; a job that never started counts nothing.

The queued observables count what waiting jobs ask for, from Eligible
(Submit where Eligible is Unknown) to Start, or to End for a job cancelled
while pending, or to now while it still waits; a pending array row counts
once per task it stands for. A job that never started and whose last reason
is a hold, a future begin time or a dependency (collector/reasons.py) is not
waiting for resources and counts nothing (the queue table counts it as held). Bins are aligned to
multiples of `bin_seconds` since the Unix epoch, so they stay put from run
to run. The last bin is partial and is averaged over its elapsed part.

Each job adds to at most two partial bins (its first and its last) and a run
of full bins between them. Partial bins are summed with `np.bincount`; the
runs of full bins with a difference array and a cumulative sum per user row,
so the work is O(jobs + users x bins) with no Python loop over either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from collector.jobtable import COMBO_SEP, GROUPINGS, JobTable
from collector.observables import KEYS, QUEUED, RUNNING
from collector.reasons import not_eligible


@dataclass(frozen=True)
class Window:
    """`n_bins` bins of `bin_seconds`, the last holding `now`."""

    start: int
    now: int
    bin_seconds: int
    n_bins: int

    @property
    def end(self) -> int:
        """The end of the last bin (>= now)."""
        return self.start + self.n_bins * self.bin_seconds

    def bin_starts(self) -> np.ndarray:
        return self.start + self.bin_seconds * np.arange(self.n_bins, dtype=np.int64)

    def bin_lengths(self) -> np.ndarray:
        """Seconds each bin has run: full, except the last, which ends at now."""
        lengths = np.full(self.n_bins, float(self.bin_seconds))
        lengths[-1] = self.now - (self.end - self.bin_seconds)
        return lengths

    # The grid's arithmetic, shared with DayGrid (uneven bins): the bin holding
    # each second `t`, the start of bin `i`, and a full bin's length.
    def index(self, t: np.ndarray) -> np.ndarray:
        return (t - self.start) // self.bin_seconds

    def edge(self, i: np.ndarray) -> np.ndarray:
        return self.start + i * self.bin_seconds

    def full_lengths(self) -> np.ndarray | float:
        return float(self.bin_seconds)


@dataclass(frozen=True)
class DayGrid:
    """Bins of uneven length between `edges` (epoch seconds, increasing): the
    site's local days, whose lengths change with daylight saving time.
    `now` is where counting stops (in or after the last bin)."""

    edges: np.ndarray
    now: int

    def __post_init__(self) -> None:
        if len(self.edges) < 2 or not (np.diff(self.edges) > 0).all():
            raise ValueError("a DayGrid needs two or more increasing edges")
        if not self.edges[0] <= self.now <= self.edges[-1]:
            raise ValueError(f"now {self.now} is outside the grid "
                             f"[{int(self.edges[0])}, {int(self.edges[-1])}]")

    @property
    def start(self) -> int:
        return int(self.edges[0])

    @property
    def end(self) -> int:
        return int(self.edges[-1])

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    def index(self, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, t, side="right").astype(np.int64) - 1

    def edge(self, i: np.ndarray) -> np.ndarray:
        return self.edges[i]

    def full_lengths(self) -> np.ndarray | float:
        return np.diff(self.edges).astype(np.float64)


Grid = Window | DayGrid


def make_window(now: float, bin_seconds: int, n_bins: int) -> Window:
    """The window of `n_bins` bins ending with the bin that holds `now`.

    A `now` exactly on a bin boundary closes the bin before it (that bin is
    then complete, and no empty bin is started)."""
    if bin_seconds <= 0 or n_bins <= 0:
        raise ValueError(f"need positive bin_seconds and n_bins, got {bin_seconds!r}, {n_bins!r}")
    now_s = math.floor(now)
    end = -(-now_s // bin_seconds) * bin_seconds  # ceil to a boundary
    return Window(start=end - n_bins * bin_seconds, now=now_s, bin_seconds=bin_seconds,
                  n_bins=n_bins)


@dataclass(frozen=True)
class Usage:
    """Binned usage of one QoS: `series[obs]` is (users x bins), `current[obs]` (users)."""

    window: Window
    users: tuple[str, ...]
    series: dict[str, np.ndarray]
    current: dict[str, np.ndarray]
    jobs_counted: int


def _weights(jobs: JobTable, rows: np.ndarray, queued: bool = False) -> np.ndarray:
    """(observables x rows) resource amounts of the jobs at index `rows`: each
    running (or queued) observable's job column, or 1 per job where it has
    none (a job count); what a queued row asks is per task."""
    if queued:
        tasks = jobs.tasks[rows]
        return np.stack([tasks if o.column == "tasks" else jobs.column_at(str(o.column), rows) * tasks
                         for o in QUEUED])
    return np.stack([
        np.ones(len(rows)) if o.column is None else jobs.column_at(o.column, rows)
        for o in RUNNING
    ])


def not_waiting(jobs: JobTable) -> np.ndarray:
    """Per job: it never started and its last reason says it is not waiting for
    resources (held, a future begin time, a dependency)."""
    table = np.array([not_eligible(r) for r in jobs.reasons] or [False])
    return np.isnan(jobs.start) & table[jobs.reason]


def wait_span(jobs: JobTable, now: float) -> tuple[np.ndarray, np.ndarray]:
    """[from, to) of each job's wait: Eligible (Submit where Unknown) to Start,
    End (cancelled while pending) or now; NaN where it did not wait for resources."""
    since = np.where(np.isnan(jobs.eligible), jobs.submit, jobs.eligible)
    until = np.where(~np.isnan(jobs.start), jobs.start, np.where(np.isnan(jobs.end), now, jobs.end))
    until = np.minimum(until, now)
    since = np.where(not_waiting(jobs), np.nan, since)
    return since, until


def _binned_seconds(user: np.ndarray, s: np.ndarray, e: np.ndarray, weights: np.ndarray,
                    n_users: int, window: Grid) -> np.ndarray:
    """(observables x users x bins) resource-seconds of jobs occupying [s, e)
    (inside the grid)."""
    nb = window.n_bins
    i0 = window.index(s)
    i1 = window.index(e - 1)  # the bin holding the job's last second
    first_w = np.minimum(e, window.edge(i0 + 1)) - s
    multi = np.flatnonzero(i1 > i0)
    inner = np.flatnonzero(i1 > i0 + 1)
    last_w = e[multi] - window.edge(i1[multi])
    # Only the bins from the earliest job's first are made (a cycle's hot
    # jobs touch the last hours of the window, rarely its start); the rest are 0.
    lo = int(i0.min()) if len(i0) else nb
    full_lengths = window.full_lengths()
    if not isinstance(full_lengths, float):
        full_lengths = full_lengths[lo:]
    i0, i1, nb_all, nb = i0 - lo, i1 - lo, nb, nb - lo
    row = user * nb
    drow = user * (nb + 1)
    size = n_users * nb
    # The indices are the same for every observable: built once. Partial bins:
    # each job's first bin, then the last bin of the jobs spanning several.
    partial_idx = np.concatenate([row + i0, (row + i1)[multi]])
    # Full bins between: +w after the first bin, -w at the last (a difference array).
    diff_idx = np.concatenate([(drow + i0 + 1)[inner], (drow + i1)[inner]])
    out = np.zeros((weights.shape[0], n_users, nb_all))
    for k, w in enumerate(weights):
        if not w.any():   # nothing of this observable (no GPUs, no usage recorded): no work
            continue
        total = np.bincount(partial_idx, weights=np.concatenate([w * first_w, w[multi] * last_w]),
                            minlength=size)
        w_inner = w[inner]
        diff = np.bincount(diff_idx, weights=np.concatenate([w_inner, -w_inner]),
                           minlength=n_users * (nb + 1))
        full = np.cumsum(diff.reshape(n_users, nb + 1), axis=1)[:, :nb]
        out[k, :, lo:] = total.reshape(n_users, nb) + full * full_lengths
    return out


def spread_seconds(s: np.ndarray, e: np.ndarray, window: Window) -> np.ndarray:
    """Per bin, the seconds of the intervals [s, e) inside it (all inside the window)."""
    n = len(s)
    return _binned_seconds(np.zeros(n, dtype=np.int64), s.astype(np.int64), e.astype(np.int64),
                           np.ones((1, n)), 1, window)[0, 0]


@dataclass(frozen=True)
class Binned:
    """Raw sums of one QoS before averaging: what can be added up across parts
    of the job store (collector/store.py keeps the frozen part's sums)."""

    users: tuple[str, ...]
    seconds: np.ndarray    # (observables x users x bins) resource-seconds
    current: np.ndarray    # (observables x users) running at now
    counted: int           # jobs that ran inside the window


def bin_seconds(jobs: JobTable, window: Grid, qos: str | None = None) -> Binned:
    """Resource-seconds per user and bin, and what runs at `window.now`.

    `jobs` holds the jobs of one QoS, or of several and `qos` names the one to
    bin (cheaper than taking the QoS's rows first, which copies every column).
    `window` is a Window (even bins) or a DayGrid (local days); either way a
    job counts only inside [start, now) of the grid."""
    start, end = jobs.start, jobs.end
    now = float(window.now)
    mine = np.ones(len(jobs), dtype=bool)
    if qos is not None:
        mine = (jobs.qos == jobs.qos_names.index(qos)) if qos in jobs.qos_names else \
            np.zeros(len(jobs), dtype=bool)
    started = ~np.isnan(start) & mine
    stop = np.where(np.isnan(end), now, np.minimum(end, now))
    s = np.maximum(start, window.start)
    active = np.flatnonzero(started & (stop > s))
    running = np.flatnonzero(started & (start <= now) & (np.isnan(end) | (end > now)))
    since, until = wait_span(jobs, now)
    qs = np.maximum(since, window.start)
    waited = np.flatnonzero(mine & (until > qs))          # NaN `since` compares False
    waiting = np.flatnonzero(mine & np.isnan(start) & (since <= now)
                             & (np.isnan(end) | (end > now)))
    # Only the users with a job here get a row: the arrays grow with this
    # QoS's own users, never with every user of the table (of the site).
    present = np.unique(np.concatenate([jobs.user[active], jobs.user[running],
                                        jobs.user[waited], jobs.user[waiting]]))
    codes = np.searchsorted(present, jobs.user)
    n_users = len(present)
    held = _binned_seconds(codes[active], s[active].astype(np.int64),
                           stop[active].astype(np.int64), _weights(jobs, active), n_users,
                           window)
    asked = _binned_seconds(codes[waited], qs[waited].astype(np.int64),
                            until[waited].astype(np.int64), _weights(jobs, waited, True),
                            n_users, window)
    current = np.stack([
        np.bincount(codes[rows], weights=w, minlength=n_users)
        for rows, queued in ((running, False), (waiting, True))
        for w in _weights(jobs, rows, queued)
    ])
    return Binned(users=tuple(jobs.users[i] for i in present.tolist()),
                  seconds=np.concatenate([held, asked]), current=current, counted=len(active))


def add_binned(a: Binned, b: Binned, reuse_first: bool = False) -> Binned:
    """The sums of two parts (same window), over the union of their users;
    with `reuse_first`, `a`'s arrays (made for this by the caller) are added
    into rather than copied when `a` has every user."""
    if not a.users:
        return Binned(b.users, b.seconds, b.current, a.counted + b.counted)
    users = tuple(sorted(set(a.users) | set(b.users)))
    n_obs, _, n_bins = a.seconds.shape
    # Usually one part (the cold sums) has every user of the other: its
    # arrays take the other's rows; else both go into zeros.
    base, other = (a, b) if users == a.users else (b, a) if users == b.users else (None, None)
    if base is not None and other is not None:
        seconds, current = ((base.seconds, base.current) if reuse_first and base is a
                            else (base.seconds.copy(), base.current.copy()))
        parts: tuple[Binned, ...] = (other,)
    else:
        seconds, current = np.zeros((n_obs, len(users), n_bins)), np.zeros((n_obs, len(users)))
        parts = (a, b)
    pos = {u: i for i, u in enumerate(users)}
    for part in parts:
        idx = np.array([pos[u] for u in part.users], dtype=np.int64)
        if len(idx):
            seconds[:, idx] += part.seconds
            current[:, idx] += part.current
    return Binned(users, seconds, current, a.counted + b.counted)


def fold_names(names: tuple[str, ...], by: str) -> tuple[tuple[str, ...], np.ndarray]:
    """The `by` names (GROUPINGS) of combined names (JobTable.combined), sorted,
    and where each combined name goes; a plain name is a user's (account and
    partition not known: "")."""
    part = GROUPINGS.index(by)
    keys = [[*n.split(COMBO_SEP), "", ""][part] if COMBO_SEP in n or part == 0 else ""
            for n in names]
    out = tuple(sorted(set(keys)))
    pos = {k: i for i, k in enumerate(out)}
    return out, np.array([pos[k] for k in keys], dtype=np.int64)


def fold_rows(values: np.ndarray, to: np.ndarray, n: int, axis: int) -> np.ndarray:
    """`values` summed along `axis` into `n` rows, row i into row to[i]."""
    # A product with the 0/1 matrix of `to`: one pass over the values in BLAS,
    # about four times faster than sorting the rows and np.add.reduceat (which
    # is slow along an inner axis), at 500 QoS 1.4 s a cycle. The sums are the
    # same but for their order (a last-bit difference, far below the rounding).
    values = np.asarray(values, dtype=np.float64)
    onto = np.zeros((n, len(to)))
    onto[to, np.arange(len(to))] = 1.0
    if values.ndim == 1:
        return onto @ values
    return np.moveaxis(onto @ np.moveaxis(values, axis, -2), -2, axis)


def fold(binned: Binned, by: str) -> Binned:
    """Sums per (user, account, partition) folded to one grouping's."""
    names, to = fold_names(binned.users, by)
    return Binned(names, fold_rows(binned.seconds, to, len(names), 1),
                  fold_rows(binned.current, to, len(names), 1), binned.counted)


def usage_of(binned: Binned, window: Window) -> Usage:
    """Averages per bin. Users with no usage in the window and nothing running
    are left out; the rest are sorted by CPU-time in the window, largest
    first, then by name."""
    names = binned.users
    seconds, current_all = binned.seconds, binned.current
    per_user = seconds.sum(axis=2)      # (observables x users), one pass over the sums
    cpu_time = per_user[0]
    keep = (per_user.sum(axis=0) > 0) | (current_all.sum(axis=0) > 0)
    order = sorted(np.flatnonzero(keep), key=lambda i: (-cpu_time[i], names[i]))
    series_all = seconds[:, order] / window.bin_lengths()   # the rows kept, in order
    return Usage(
        window=window,
        users=tuple(names[i] for i in order),
        series={o: series_all[k] for k, o in enumerate(KEYS)},
        current={o: current_all[k][order] for k, o in enumerate(KEYS)},
        jobs_counted=binned.counted,
    )


def bin_usage(jobs: JobTable, window: Window, qos: str | None = None) -> Usage:
    """Per-user average allocation in each bin, and what runs at `window.now`
    (`qos` as in `bin_seconds`)."""
    return usage_of(bin_seconds(jobs, window, qos), window)
