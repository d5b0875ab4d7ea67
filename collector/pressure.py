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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from collector.binning import Window, spread_seconds, wait_span
from collector.jobtable import JobTable
from collector.observables import LIMITED
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
    waits: Waits


def _limit_at(steps: Steps, at: np.ndarray) -> np.ndarray:
    """The limit in force at each instant (NaN: none)."""
    times = np.array([t for t, _ in steps], dtype=np.float64)
    values = np.array([np.nan if v is None else v for _, v in steps], dtype=np.float64)
    i = np.searchsorted(times, at, side="right") - 1
    return np.where(i >= 0, values[np.maximum(i, 0)], values[0] if len(values) else np.nan)


def analyse(jobs: JobTable, window: Window, steps: Mapping[str, Steps]) -> Analysis:
    """Pressure per limited resource (where a limit is set at some time in the
    window) and the waits of the jobs that started in the window."""
    t0, now = float(window.start), float(window.now)
    started = ~np.isnan(jobs.start)
    stop = np.where(np.isnan(jobs.end), now, np.minimum(jobs.end, now))
    hold_from = np.maximum(jobs.start, t0)
    held = np.flatnonzero(started & (stop > hold_from))
    since, until = wait_span(jobs, now)
    wait_from = np.maximum(since, t0)
    waiting = np.flatnonzero(until > wait_from)
    limited = [o for o in LIMITED
               if any(v for _, v in steps.get(o.key, ())) and o.column is not None]
    bins = window.bin_starts().astype(np.float64)
    step_times = np.array([t for o in limited for t, _ in steps[o.key]], dtype=np.float64)
    points = np.unique(np.concatenate([
        [t0, now], bins, hold_from[held], stop[held], wait_from[waiting], until[waiting],
        step_times[(step_times > t0) & (step_times < now)]]))
    points = points[(points >= t0) & (points <= now)]
    seg_s, seg_e = points[:-1], points[1:]
    seg_bin = ((seg_s - t0) // window.bin_seconds).astype(np.int64)
    # Every event is one of the points: its index once, then each resource's
    # step function is a bincount and a cumulative sum (no sort per resource).
    on, off = np.searchsorted(points, hold_from[held]), np.searchsorted(points, stop[held])
    q_on, q_off = np.searchsorted(points, wait_from[waiting]), np.searchsorted(points, until[waiting])
    n = len(points)

    def level(first: np.ndarray, last: np.ndarray, amount: np.ndarray) -> np.ndarray:
        delta = np.bincount(np.concatenate([first, last]),
                            weights=np.concatenate([amount, -amount]), minlength=n)
        return np.cumsum(delta)[:-1]   # the value on each segment [points[k], points[k+1])

    pressure, flags = {}, {}
    for o in limited:
        amount = getattr(jobs, str(o.column))
        used = level(on, off, amount[held])
        asks = getattr(jobs, ASKS[str(o.column)])[waiting] > 0
        queued = level(q_on[asks], q_off[asks], np.ones(int(asks.sum())))
        limit = _limit_at(steps[o.key], seg_s)
        set_ = np.nan_to_num(limit)
        at = (set_ > 0) & (used > set_ - np.maximum(1.0, 0.01 * set_))   # tolerance()
        flags[o.key] = at
        peak = np.zeros(window.n_bins)
        np.maximum.at(peak, seg_bin, used)
        waiting_at = at & (queued > 0.5)
        pressure[o.key] = Pressure(
            at_limit=spread_seconds(seg_s[at], seg_e[at], window),
            waiting_at_limit=spread_seconds(seg_s[waiting_at], seg_e[waiting_at], window),
            peak=peak)
    return Analysis(pressure, _waits(jobs, window, since, points, flags, limited))


def _waits(jobs: JobTable, window: Window, since: np.ndarray, points: np.ndarray,
           flags: dict[str, np.ndarray], limited: list) -> Waits:
    began = np.flatnonzero(~np.isnan(jobs.start) & (jobs.start >= window.start)
                           & (jobs.start <= window.now) & ~np.isnan(since))
    start, wait_from = jobs.start[began], since[began]
    at_limit = np.zeros(len(began))
    if limited and len(began):
        lengths = np.diff(points)
        # Which limited resources each job asked for: one bit per resource.
        combo = np.zeros(len(began), dtype=np.int64)
        for k, o in enumerate(limited):
            combo |= (getattr(jobs, ASKS[str(o.column)])[began] > 0).astype(np.int64) << k
        for c in np.unique(combo).tolist():
            if not c:
                continue
            union = np.zeros(len(lengths), dtype=bool)
            for k, o in enumerate(limited):
                if c >> k & 1:
                    union |= flags[o.key]
            cumulative = np.concatenate([[0.0], np.cumsum(lengths * union)])
            rows = combo == c
            a = np.clip(wait_from[rows], points[0], points[-1])
            b = np.clip(start[rows], points[0], points[-1])
            at_limit[rows] = np.interp(b, points, cumulative) - np.interp(a, points, cumulative)
    users_present = np.unique(jobs.user[began])
    return Waits(
        users=tuple(jobs.users[i] for i in users_present.tolist()),
        user=np.searchsorted(users_present, jobs.user[began]),
        start=start, wait=np.maximum(start - wait_from, 0.0), at_limit=np.maximum(at_limit, 0.0),
        seen_limit=(jobs.reasons_seen[began].astype(np.int64) & GROUP_BITS) > 0)


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
