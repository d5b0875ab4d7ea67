"""Limit pressure and wait history of one QoS, from the exact job intervals (pure).

The group's use of a resource is a step function of time: each job adds what
it holds from Start to End. Where the QoS has a limit on the resource, the
group is *at its limit* while less than one unit (one CPU, one GPU, one GB)
or less than 1% of the limit, whichever is larger, is free:

    at limit  <=>  used > limit - max(1, 0.01 * limit)

(a GPU limit of 8 is reached at 8 GPUs; a CPU limit of 2,000 at 1,981 CPUs).
The step function is evaluated at every job start and end, every change of
the limit and every bin start, so the seconds at the limit in each bin are
exact, not read off bin averages; so is each bin's peak use. "Waiting at the
limit" is the time at the limit during which at least one job asking for
that resource waited (collector/binning.py's wait rule): an inference from
the intervals, not Slurm's word.

A job's wait is Start - Eligible (Submit where Eligible is Unknown); the part
of it spent while the group was at its limit for a resource the job asked
for is its wait at the limit (again inferred from the intervals).
"""

from __future__ import annotations

import dataclasses
import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from collector.binning import Window, spread_seconds, wait_span
from collector.jobtable import JobTable
from collector.observables import LIMITED, observable
from collector.reasons import GROUP_BITS

Steps = Sequence[tuple[int, float | None]]
# The job column of what a waiting job asks, per allocated column.
ASKS = {"cpus": "req_cpus", "gpus": "req_gpus", "mem_gib": "req_mem_gib"}


def tolerance(limit: float) -> float:
    """How close to the limit counts as at it: one unit, or 1% of the limit."""
    return max(1.0, 0.01 * limit)


@dataclass(frozen=True)
class Pressure:
    """One limited resource of one QoS over the window, per bin."""

    at_limit: np.ndarray          # seconds at the limit
    waiting_at_limit: np.ndarray  # seconds at the limit with a job asking for it waiting
    peak: np.ndarray              # the most in use at any instant


@dataclass(frozen=True)
class Waits:
    """The jobs of one QoS that started inside the window, and how long they waited."""

    users: tuple[str, ...]
    user: np.ndarray          # code into `users`
    start: np.ndarray         # epoch seconds
    wait: np.ndarray          # seconds, Start - Eligible
    at_limit: np.ndarray      # seconds of the wait while the group was at a limit it asked for
    seen_limit: np.ndarray    # bool: squeue or sacct saw it wait on a group limit


@dataclass(frozen=True)
class Analysis:
    pressure: dict[str, Pressure]   # limited observable key -> its pressure (limits set only)
    waits: Waits                    # per job
    settled: tuple[WaitDays, ...] = ()   # more waits, already summed per user and day

    def wait_days(self, days: np.ndarray) -> WaitDays:
        """All the waits per user and local day (`days`: local_days of the window)."""
        out = wait_days(self.waits, days)
        for part in self.settled:
            out = add_wait_days(out, part)
        return out


Intervals = dict[str, tuple[np.ndarray, np.ndarray]]   # key -> sorted disjoint [start, end)


@dataclass(frozen=True)
class Began:
    """The jobs that started in a span: who, when, waiting since when, which
    limited resources they asked for, and whether a group limit was seen."""

    users: tuple[str, ...]
    user: np.ndarray
    start: np.ndarray
    since: np.ndarray
    asks: dict[str, np.ndarray]     # limited key -> asked for it (bool per job)
    seen_limit: np.ndarray
    # The part of each wait at a limit it asked for, where already known (NaN:
    # not yet): valid for waits that began inside the span's window.
    at_limit: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class Span:
    """The pressure of one QoS over [start, end) of a window: per bin (zero
    outside the span), the at-limit intervals, and the jobs that started in
    it. Spans of one window add up (`finish`): the collector keeps the span
    before the store's frozen boundary and computes only the rest each cycle."""

    start: int
    end: int
    pressure: dict[str, Pressure]
    intervals: Intervals
    began: Began
    # The waits of jobs no window before `horizon` cuts (they began, and waited
    # since, after it): summed per user and day once, not carried job by job.
    settled: WaitDays | None = None
    horizon: float = float("inf")


def settle(span: Span, horizon: float, days: np.ndarray) -> Span:
    """The span with the waits that began after `horizon` summed per user and
    day (`days`: local midnights); only the rest stay per job. Valid for
    windows that start before `horizon` (the kept span is made anew daily)."""
    g = span.began
    edge = (g.start < horizon) | (g.since < horizon) | np.isnan(g.at_limit)
    rest = ~edge
    summed = wait_days(Waits(g.users, g.user[rest], g.start[rest],
                             np.maximum(g.start[rest] - g.since[rest], 0.0), g.at_limit[rest],
                             g.seen_limit[rest]), days)
    kept = Began(g.users, g.user[edge], g.start[edge], g.since[edge],
                 {k: v[edge] for k, v in g.asks.items()}, g.seen_limit[edge], g.at_limit[edge])
    return dataclasses.replace(span, began=kept, settled=summed, horizon=horizon)


def _limit_at(steps: Steps, at: np.ndarray) -> np.ndarray:
    """The limit in force at each instant (NaN: none)."""
    times = np.array([t for t, _ in steps], dtype=np.float64)
    values = np.array([np.nan if v is None else v for _, v in steps], dtype=np.float64)
    i = np.searchsorted(times, at, side="right") - 1
    return np.where(i >= 0, values[np.maximum(i, 0)], values[0] if len(values) else np.nan)


def limited_keys(steps: Mapping[str, Steps]) -> list[str]:
    """The limited observables with a limit at some time (the ones with pressure)."""
    return [o.key for o in LIMITED if any(v for _, v in steps.get(o.key, ())) and o.column]


def analyse(jobs: JobTable, window: Window, steps: Mapping[str, Steps]) -> Analysis:
    """Pressure per limited resource (where a limit is set at some time in the
    window) and the waits of the jobs that started in the window."""
    return finish([span_of(jobs, window, steps, window.start, window.now)], window)


def span_of(jobs: JobTable, window: Window, steps: Mapping[str, Steps], a: int, b: int
            ) -> Span:
    """The span [a, b) of `window` (bin boundaries, or b = now) from the jobs
    active in it; a span ending at now takes the jobs starting at now too."""
    t0, t1, now = float(a), float(b), float(window.now)
    started = ~np.isnan(jobs.start)
    stop = np.minimum(np.where(np.isnan(jobs.end), now, np.minimum(jobs.end, now)), t1)
    hold_from = np.maximum(jobs.start, t0)
    held = np.flatnonzero(started & (stop > hold_from))
    since, until = wait_span(jobs, now)
    until = np.minimum(until, t1)
    wait_from = np.maximum(since, t0)
    waiting = np.flatnonzero(until > wait_from)
    keys = limited_keys(steps)
    pressure: dict[str, Pressure] = {}
    intervals: Intervals = {}
    if keys:
        pressure, intervals = _step_functions(jobs, window, steps, keys, t0, t1, held,
                                              hold_from[held], stop[held], waiting,
                                              wait_from[waiting], until[waiting])
    last = (jobs.start <= t1) if b == window.now else (jobs.start < t1)
    rows = np.flatnonzero(started & (jobs.start >= t0) & last & ~np.isnan(since))
    present = np.unique(jobs.user[rows])
    began = Began(
        users=tuple(jobs.users[i] for i in present.tolist()),
        user=np.searchsorted(present, jobs.user[rows]), start=jobs.start[rows],
        since=since[rows],
        asks={k: getattr(jobs, ASKS[str(observable(k).column)])[rows] > 0 for k in keys},
        seen_limit=(jobs.reasons_seen[rows].astype(np.int64) & GROUP_BITS) > 0,
        at_limit=np.full(len(rows), np.nan))
    return Span(a, b, pressure, intervals, began)


def _step_functions(jobs: JobTable, window: Window, steps: Mapping[str, Steps],
                    keys: list[str], t0: float, t1: float, held: np.ndarray, on_t: np.ndarray,
                    off_t: np.ndarray, waiting: np.ndarray, q_on_t: np.ndarray,
                    q_off_t: np.ndarray) -> tuple[dict[str, Pressure], Intervals]:
    """Each limited resource's use and queue as step functions of time over
    [t0, t1], to the second (Slurm's times are whole seconds): the points are
    marked in a table of the span's seconds, so every event finds its segment
    by a lookup, never a sort or a binary search."""
    bins = window.bin_starts()
    step_times = np.array([t for k in keys for t, _ in steps[k]], dtype=np.float64)
    length = int(t1 - t0)
    marks = np.zeros(length + 1, dtype=bool)
    marks[[0, length]] = True
    inner = bins[(bins > t0) & (bins < t1)]
    cuts = step_times[(step_times > t0) & (step_times < t1)]
    offsets = [np.round(x - t0).astype(np.int64) for x in (on_t, off_t, q_on_t, q_off_t)]
    for o in (*offsets, np.round(inner - t0).astype(np.int64),
              np.round(cuts - t0).astype(np.int64)):
        marks[o] = True
    position = np.cumsum(marks, dtype=np.int32) - 1   # second -> the point at or before it
    points = np.flatnonzero(marks).astype(np.float64) + t0
    on, off, q_on, q_off = (position[o] for o in offsets)
    seg_s, seg_e = points[:-1], points[1:]
    # The span's start and each bin boundary inside it are points: the first
    # segment of each bin the span touches, and that bin's index.
    firsts = position[np.concatenate([[0], np.round(inner - t0).astype(np.int64)])]
    first_bin = int((t0 - window.start) // window.bin_seconds)
    n = len(points)

    def limit_of(key: str) -> np.ndarray:
        """The limit on each segment (0: none): it changes only at step times,
        which are points, so it is a run of values from point to point."""
        times = step_times_of[key]
        inside = (times > t0) & (times < t1)
        values = np.nan_to_num(_limit_at(steps[key], np.concatenate([[t0], times[inside]])))
        cuts_at = position[np.round(times[inside] - t0).astype(np.int64)]
        edges = np.concatenate([[0], cuts_at, [n - 1]])
        return np.repeat(values, np.diff(edges))

    step_times_of = {k: np.array([t for t, _ in steps[k]], dtype=np.float64) for k in keys}

    # Every resource's jobs turn on and off at the same points: the indices
    # are joined once, and only the amounts change per resource.
    held_at, queued_at = np.concatenate([on, off]), np.concatenate([q_on, q_off])

    def level(at: np.ndarray, amount: np.ndarray) -> np.ndarray:
        delta = np.bincount(at, weights=np.concatenate([amount, -amount]), minlength=n)
        return np.cumsum(delta)[:-1]   # the value on each segment [points[k], points[k+1])

    pressure, intervals = {}, {}
    queued_by_all: np.ndarray | None = None   # the queue of jobs that all ask (most resources)
    for key in keys:
        column = str(observable(key).column)
        used = level(held_at, getattr(jobs, column)[held])
        asks = getattr(jobs, ASKS[column])[waiting] > 0
        if asks.all() and queued_by_all is not None:
            queued = queued_by_all
        else:
            queued = level(queued_at, asks.astype(np.float64))
            queued_by_all = queued if asks.all() else queued_by_all
        limit = limit_of(key)
        at = (limit > 0) & (used > limit - np.maximum(1.0, 0.01 * limit))   # tolerance()
        intervals[key] = _runs(at, seg_s, seg_e)
        waiting_at = _runs(at & (queued > 0.5), seg_s, seg_e)
        peak = np.zeros(window.n_bins)
        if len(used):   # segments are in time order: each bin's are one run
            peak[first_bin:first_bin + len(firsts)] = np.maximum.reduceat(used, firsts)
        pressure[key] = Pressure(
            at_limit=spread_seconds(*intervals[key], window),
            waiting_at_limit=spread_seconds(*waiting_at, window), peak=peak)
    return pressure, intervals


def with_waits_at_limit(span: Span) -> Span:
    """The span with each of its jobs' wait at the limit worked out from its own
    intervals: right for every wait that began inside it (kept between cycles)."""
    g = span.began
    keys = sorted(span.intervals)
    at = _at_limit(keys, span.intervals, g.asks, np.maximum(g.since, span.start), g.start)
    return dataclasses.replace(span, began=dataclasses.replace(g, at_limit=at))


def _at_limit(keys: list[str], intervals: Intervals, asks: Mapping[str, np.ndarray],
              a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per job, the length of [a, b) covered by the at-limit intervals of the
    resources it asked for."""
    out = np.zeros(len(a))
    combo = np.zeros(len(a), dtype=np.int64)
    for bit, k in enumerate(keys):
        combo |= asks[k].astype(np.int64) << bit
    for c in np.unique(combo).tolist():
        if not c:
            continue
        chosen = [intervals[k] for bit, k in enumerate(keys) if c >> bit & 1]
        s, e = _merged(np.concatenate([x[0] for x in chosen]), np.concatenate([x[1] for x in chosen]))
        rows = combo == c
        out[rows] = _covered(s, e, a[rows], b[rows])
    return out


def _runs(flag: np.ndarray, seg_s: np.ndarray, seg_e: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """The runs of flagged segments (segments that follow one another) as intervals."""
    if not flag.any():
        return seg_s[:0], seg_e[:0]
    edges = np.diff(np.concatenate([[False], flag, [False]]).astype(np.int8))
    return seg_s[np.flatnonzero(edges == 1)], seg_e[np.flatnonzero(edges == -1) - 1]


def _merged(s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intervals sorted and merged where they touch or overlap."""
    if not len(s):
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    new = np.concatenate([[True], s[1:] > reach[:-1]])
    firsts = np.flatnonzero(new)
    return s[new], np.maximum.reduceat(e, firsts)


def _covered(s: np.ndarray, e: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per query [a, b), the length covered by the sorted disjoint intervals [s, e)."""
    if not len(s):
        return np.zeros(len(a))
    cumulative = np.concatenate([[0.0], np.cumsum(e - s)])

    def upto(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(s, t, side="right") - 1
        inside = np.clip(t - s[np.maximum(i, 0)], 0, (e - s)[np.maximum(i, 0)])
        return np.where(i >= 0, cumulative[np.maximum(i, 0)] + inside, 0.0)

    return np.maximum(upto(b) - upto(a), 0.0)


def finish(spans: Sequence[Span], window: Window) -> Analysis:
    """The window's pressure and waits from spans that cover it: per-bin sums
    (peaks: the larger), and each wait's part at a limit the job asked for,
    over the at-limit intervals of all the spans inside the window."""
    keys = sorted({k for sp in spans for k in sp.pressure})
    pressure, intervals = {}, {}
    for k in keys:
        parts = [sp.pressure[k] for sp in spans if k in sp.pressure]
        pressure[k] = Pressure(sum((p.at_limit for p in parts), np.zeros(window.n_bins)),
                               sum((p.waiting_at_limit for p in parts), np.zeros(window.n_bins)),
                               np.maximum.reduce([p.peak for p in parts]))
        s = np.concatenate([sp.intervals[k][0] for sp in spans if k in sp.intervals])
        e = np.concatenate([sp.intervals[k][1] for sp in spans if k in sp.intervals])
        s, e = np.maximum(s, window.start), e
        keep = e > s
        intervals[k] = _merged(s[keep], e[keep])
    users = tuple(sorted({u for sp in spans for u in sp.began.users}))
    position = {u: i for i, u in enumerate(users)}
    user = np.concatenate([np.array([position[u] for u in sp.began.users] or [0],
                                    dtype=np.int64)[sp.began.user] for sp in spans])
    start = np.concatenate([sp.began.start for sp in spans])
    since = np.concatenate([sp.began.since for sp in spans])
    seen = np.concatenate([sp.began.seen_limit for sp in spans])
    known = np.concatenate([sp.began.at_limit if len(sp.began.at_limit) == len(sp.began.start)
                            else np.full(len(sp.began.start), np.nan) for sp in spans])
    asks = {k: np.concatenate([sp.began.asks.get(k, np.zeros(len(sp.began.start), bool))
                               for sp in spans]) for k in keys}
    inside = (start >= window.start) & (start <= window.now)
    user, start, since, seen = user[inside], start[inside], since[inside], seen[inside]
    asks = {k: v[inside] for k, v in asks.items()}
    at_limit = known[inside]
    # Worked out here: what no span knew, and waits that began before the window
    # (only their part inside it counts).
    need = np.isnan(at_limit) | (since < window.start)
    if need.any():
        at_limit[need] = _at_limit(keys, intervals, {k: v[need] for k, v in asks.items()},
                                   np.maximum(since[need], window.start), start[need])
    waits = Waits(users=users, user=user, start=start, wait=np.maximum(start - since, 0.0),
                  at_limit=at_limit, seen_limit=seen)
    settled = tuple(sp.settled for sp in spans if sp.settled is not None)
    return Analysis(pressure, waits, settled)


@dataclass(frozen=True)
class AtLimitNow:
    """A limited resource the group is at now: who holds it, what waits, when it frees."""

    key: str
    used: float
    limit: float
    holders: tuple[tuple[str, float], ...]   # users, most first
    waiting_jobs: int                          # pending jobs asking for it
    frees_by: float | None                     # earliest Start + time limit of its holders


def at_limit_now(jobs: JobTable, now: int, limits: Mapping[str, float | None]
                 ) -> list[AtLimitNow]:
    """The limited resources in use up to the limit at `now` (pure)."""
    out = []
    running = ~np.isnan(jobs.start) & (jobs.start <= now) & (np.isnan(jobs.end) | (jobs.end > now))
    since, _ = wait_span(jobs, float(now))
    not_yet = np.isnan(jobs.start) | (jobs.start > now)
    pending = not_yet & (np.isnan(jobs.end) | (jobs.end > now)) & ~np.isnan(since) & (since <= now)
    for o in LIMITED:
        limit = limits.get(o.key)
        if not limit or o.column is None:
            continue
        amount = getattr(jobs, o.column)
        holding = running & (amount > 0)
        used = float(amount[holding].sum())
        if not used > limit - tolerance(limit):
            continue
        per_user = np.bincount(jobs.user[holding], weights=amount[holding],
                               minlength=len(jobs.users))
        holders = sorted(((jobs.users[i], float(per_user[i])) for i in np.flatnonzero(per_user)),
                         key=lambda h: (-h[1], h[0]))
        ends = jobs.start[holding] + jobs.timelimit[holding]
        ends = ends[~np.isnan(ends)]
        out.append(AtLimitNow(
            key=o.key, used=used, limit=float(limit), holders=tuple(holders),
            waiting_jobs=int(jobs.tasks[pending & (getattr(jobs, ASKS[o.column]) > 0)].sum()),
            frees_by=float(ends.min()) if len(ends) else None))
    return out


# --- the span before the frozen boundary, kept from cycle to cycle ----------------


def rebased(span: Span, window: Window) -> Span:
    """A span computed for an earlier window (starting at `span.start`) on the
    bins of `window`, which starts at or after it (windows move forward)."""
    b = window.bin_seconds
    offset, k = (window.start - span.start) // b, max(0, (span.end - window.start) // b)

    def move(values: np.ndarray) -> np.ndarray:
        out = np.zeros(window.n_bins)
        part = values[offset:offset + k]
        out[:len(part)] = part
        return out

    pressure = {key: Pressure(move(p.at_limit), move(p.waiting_at_limit), move(p.peak))
                for key, p in span.pressure.items()}
    intervals = {}
    for key, (s, e) in span.intervals.items():
        keep = e > window.start
        intervals[key] = (np.maximum(s[keep], window.start), e[keep])
    g = span.began
    keep = g.start >= window.start
    began = Began(g.users, g.user[keep], g.start[keep], g.since[keep],
                  {key: v[keep] for key, v in g.asks.items()}, g.seen_limit[keep],
                  g.at_limit[keep] if len(g.at_limit) == len(keep) else np.zeros(0))
    return Span(window.start, span.end, pressure, intervals, began, span.settled, span.horizon)


def same_limits(a: Mapping[str, Steps], b: Mapping[str, Steps], start: int, end: int) -> bool:
    """The limits of `a` and `b` agree at every instant of [start, end)."""
    keys = limited_keys(a)
    if keys != limited_keys(b):
        return False
    for key in keys:
        times = [float(start)] + [float(t) for steps in (a[key], b[key]) for t, _ in steps
                                  if start < t < end]
        at = np.array(times)
        x, y = _limit_at(a[key], at), _limit_at(b[key], at)
        if not np.array_equal(np.nan_to_num(x, nan=-1.0), np.nan_to_num(y, nan=-1.0)):
            return False
    return True


def frozen_digest(jobs: JobTable, boundary: int, now: int) -> str:
    """A digest of what the (hot) records hold and wait for before `boundary`:
    the span before it is kept only while this stays the same."""
    t1 = float(boundary)
    started = ~np.isnan(jobs.start)
    stop = np.minimum(np.where(np.isnan(jobs.end), now, np.minimum(jobs.end, now)), t1)
    hold = started & (jobs.start < t1) & (stop > jobs.start)
    since, until = wait_span(jobs, float(now))
    until = np.minimum(until, t1)
    wait = until > since
    rows = np.flatnonzero(hold | wait)
    from collector.store.records import record_keys  # the store's own key

    keys = record_keys(jobs.take(rows))
    by_key = np.argsort(keys, kind="stable")
    order = rows[by_key]
    # Each record's user as a CRC of the name: of the users these rows name
    # only (the table's names are the site's: 10,000 at 500 QoS, per QoS).
    codes, which = np.unique(jobs.user[order], return_inverse=True)
    names = np.array([zlib.crc32(jobs.users[c].encode()) for c in codes.tolist()],
                     dtype=np.float64)
    columns = [keys[by_key].astype(np.float64),
               np.where(hold, jobs.start, np.nan)[order], np.where(hold, stop, np.nan)[order],
               np.where(wait, since, np.nan)[order], np.where(wait, until, np.nan)[order],
               names[which] if len(order) else np.zeros(0)]
    columns += [getattr(jobs, c)[order] for c in ("cpus", "gpus", "mem_gib", "req_cpus",
                                                 "req_gpus", "req_mem_gib", "tasks",
                                                 "reasons_seen")]
    digest = hashlib.blake2b(digest_size=16)
    for c in columns:
        digest.update(np.ascontiguousarray(c, dtype=np.float64).tobytes())
    return digest.hexdigest()


# --- the waits, per user and day: what the snapshot carries -------------------------

# Waits are counted in 101 bins: [0, 1 s), then 100 log-spaced bins from 1 s to 60
# days (each about 18% wider than the last), the last open-ended. A percentile is
# read inside its bin (log-linear): within about 9% of the exact value.
WAIT_EDGES = np.concatenate([[0.0], np.geomspace(1.0, 60 * 86400.0, 100)])


@dataclass(frozen=True)
class WaitDays:
    """The waits of the jobs that started in the window, per user and local
    day: jobs, summed wait, summed wait at the limit, jobs seen waiting on a
    group limit, and a histogram of the waits (WAIT_EDGES) for percentiles.
    Bounded by users x days, whatever the number of jobs."""

    day_starts: np.ndarray          # each local midnight from the window's first day, epoch s
    users: tuple[str, ...]
    user: np.ndarray                # per (user, day) cell
    day: np.ndarray
    jobs: np.ndarray
    wait: np.ndarray
    at_limit: np.ndarray
    seen_limit: np.ndarray
    hist_cell: np.ndarray           # the histograms, sparse: cell, bin, count
    hist_bin: np.ndarray
    hist_count: np.ndarray

    def histogram(self, cells: np.ndarray) -> np.ndarray:
        """The summed histogram of some cells (a boolean mask over the cells)."""
        pick = cells[self.hist_cell] if len(self.hist_cell) else np.zeros(0, dtype=bool)
        return np.bincount(self.hist_bin[pick], weights=self.hist_count[pick],
                           minlength=len(WAIT_EDGES))


NO_WAIT_DAYS = WaitDays(np.zeros(0), (), *(np.zeros(0, np.int64) for _ in range(2)),
                        *(np.zeros(0) for _ in range(4)), *(np.zeros(0, np.int64) for _ in range(3)))


def local_days(start: int, end: int, tz: str) -> np.ndarray:
    """The local midnights of the days from the one holding `start` to the one
    holding `end`, and the midnight after (epoch seconds)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    day = datetime.fromtimestamp(start, zone).date()
    last = datetime.fromtimestamp(end, zone).date()
    out = []
    while day <= last + timedelta(days=1):
        out.append(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
        day += timedelta(days=1)
    return np.array(out)


_RATIO = float(np.log(WAIT_EDGES[2] / WAIT_EDGES[1]))


def wait_bin(wait: np.ndarray) -> np.ndarray:
    """The histogram bin of each wait (WAIT_EDGES): arithmetic on the log, then
    a step either way where rounding put a wait on the wrong side of an edge
    (a binary search per job is three times slower on a million jobs)."""
    last = len(WAIT_EDGES) - 1
    k = np.where(wait < 1.0, 0, 1 + np.floor(np.log(np.maximum(wait, 1.0)) / _RATIO))
    k = np.clip(k, 0, last).astype(np.int64)
    k = np.where((k > 0) & (wait < WAIT_EDGES[k]), k - 1, k)
    up = np.minimum(k + 1, last)
    return np.where((k < last) & (wait >= WAIT_EDGES[up]), up, k)


def _day_index(days: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Which local day (`days`: midnights) holds each time: days are 23 to 25 h
    long, so the index from 24 h days is off by at most one; fixed both ways."""
    if len(days) < 2:
        return np.zeros(len(t), dtype=np.int64)
    last = len(days) - 2
    i = np.clip(np.floor((t - days[0]) / 86400.0), 0, last).astype(np.int64)
    i = np.where((i > 0) & (t < days[i]), i - 1, i)
    return np.where((i < last) & (t >= days[np.minimum(i + 1, last + 1)]), i + 1, i)


def wait_days(waits: Waits, days: np.ndarray) -> WaitDays:
    """Per-job waits summed per user and local day (`days`: local_days)."""
    day = _day_index(days, waits.start)
    n_days, n_bins = max(len(days), 1), len(WAIT_EDGES)
    # Cells and histogram bins are bounded (users x days x bins): counted with
    # bincount, never sorted per job.
    cell_key = waits.user.astype(np.int64) * n_days + day
    size = max(len(waits.users), 1) * n_days
    jobs = np.bincount(cell_key, minlength=size)
    keys = np.flatnonzero(jobs)
    lookup = np.zeros(size, dtype=np.int64)
    lookup[keys] = np.arange(len(keys))
    cell = lookup[cell_key]
    n = len(keys)
    hist = wait_bin(waits.wait)
    counts = np.bincount(cell * n_bins + hist, minlength=n * n_bins)
    pair = np.flatnonzero(counts)
    return WaitDays(
        day_starts=days, users=waits.users, user=keys // n_days, day=keys % n_days,
        jobs=jobs[keys].astype(np.int64),
        wait=np.bincount(cell, weights=waits.wait, minlength=n),
        at_limit=np.bincount(cell, weights=waits.at_limit, minlength=n),
        seen_limit=np.bincount(cell, weights=waits.seen_limit.astype(np.float64), minlength=n),
        hist_cell=pair // n_bins, hist_bin=pair % n_bins, hist_count=counts[pair].astype(np.int64))


def percentile(histogram: np.ndarray, q: float) -> float:
    """The q-th percentile (0-100) of the waits counted in `histogram`."""
    total = float(histogram.sum())
    if total <= 0:
        return 0.0
    cumulative = np.cumsum(histogram)
    target = q / 100.0 * total
    k = int(np.searchsorted(cumulative, target, side="left"))
    k = min(k, len(histogram) - 1)
    before = cumulative[k - 1] if k else 0.0
    frac = (target - before) / histogram[k] if histogram[k] else 0.0
    lo = WAIT_EDGES[k]
    if k + 1 >= len(WAIT_EDGES):
        return float(lo)
    hi = WAIT_EDGES[k + 1]
    return float(lo + frac * (hi - lo)) if lo == 0 else float(lo * (hi / lo) ** frac)


def add_wait_days(a: WaitDays, b: WaitDays) -> WaitDays:
    """The cells of both, on `a`'s days (`b`'s days outside them are dropped)."""
    if not len(b.user):
        return a
    users = tuple(sorted(set(a.users) | set(b.users)))
    pos = {u: i for i, u in enumerate(users)}
    n_days = max(len(a.day_starts), 1)
    b_day = np.searchsorted(a.day_starts, b.day_starts[b.day]) if len(a.day_starts) else \
        np.zeros(len(b.day), dtype=np.int64)
    on = (b_day < len(a.day_starts)) & (a.day_starts[np.minimum(b_day, n_days - 1)]
                                        == b.day_starts[b.day]) if len(a.day_starts) else \
        np.zeros(len(b.day), dtype=bool)
    a_map = np.array([pos[u] for u in a.users] or [0], dtype=np.int64)
    b_map = np.array([pos[u] for u in b.users] or [0], dtype=np.int64)
    key = np.concatenate([a_map[a.user] * n_days + a.day, (b_map[b.user] * n_days + b_day)[on]])
    keys, cell = np.unique(key, return_inverse=True)

    def summed(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=np.concatenate([x, y[on]]).astype(np.float64),
                           minlength=len(keys))

    n_bins = len(WAIT_EDGES)
    b_cell_on = on[b.hist_cell]
    b_offset = len(a.user)
    b_index = np.cumsum(on) - 1   # b's cells that stay, renumbered after a's
    h_cell = np.concatenate([cell[a.hist_cell],
                             cell[b_offset + b_index[b.hist_cell[b_cell_on]]]])
    h_bin = np.concatenate([a.hist_bin, b.hist_bin[b_cell_on]])
    h_count = np.concatenate([a.hist_count, b.hist_count[b_cell_on]])
    pair, inverse = np.unique(h_cell * n_bins + h_bin, return_inverse=True)
    return WaitDays(
        day_starts=a.day_starts, users=users, user=keys // n_days, day=keys % n_days,
        jobs=summed(a.jobs, b.jobs).astype(np.int64), wait=summed(a.wait, b.wait),
        at_limit=summed(a.at_limit, b.at_limit), seen_limit=summed(a.seen_limit, b.seen_limit),
        hist_cell=pair // n_bins, hist_bin=pair % n_bins,
        hist_count=np.bincount(inverse, weights=h_count, minlength=len(pair)).astype(np.int64))
