"""Hypothesis strategies: job tables and windows with known bounds."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from collector.binning import Window, make_window
from collector.parse import JobTable

BIN_CHOICES = (60, 600, 900, 3600)
T0 = 1_700_000_000


@st.composite
def windows(draw: st.DrawFn) -> Window:
    bin_seconds = draw(st.sampled_from(BIN_CHOICES))
    n_bins = draw(st.integers(1, 48))
    now = T0 + draw(st.integers(0, 10 * 86400))
    return make_window(now, bin_seconds, n_bins)


@st.composite
def job_tables(draw: st.DrawFn, window: Window, max_jobs: int = 40) -> JobTable:
    """Jobs that start and end anywhere around the window: before it, across
    it, after `now`, still running (End NaN) or never started (Start NaN:
    pending, cancelled while pending, or held), having waited since Submit or
    since an Eligible after it; a pending one may be an array of tasks. An
    ended job may carry what it used (TotalCPU up to all it held, a peak
    memory), or not (NaN: not recorded)."""
    n = draw(st.integers(0, max_jobs))
    span = window.end - window.start
    lo, hi = window.start - span, window.end + span
    starts, ends, submits, eligibles, tasks, reasons = [], [], [], [], [], []
    cpu_share, rss = [], []
    for _ in range(n):
        kind = draw(st.sampled_from(["done", "done", "done", "running", "pending", "cancelled",
                                     "held"]))
        s = draw(st.integers(lo, hi))
        wait = draw(st.integers(0, span))
        submit = s - wait
        eligible = draw(st.sampled_from([np.nan, float(submit + wait // 2)]))
        tasks.append(1.0)
        reasons.append(1 if kind == "held" else 0)
        if kind in ("pending", "held"):
            starts.append(np.nan)
            ends.append(np.nan)
            tasks[-1] = float(draw(st.integers(1, 3)))
        elif kind == "cancelled":
            starts.append(np.nan)
            ends.append(float(s))
        elif kind == "running":
            starts.append(float(s))
            ends.append(np.nan)
        else:
            starts.append(float(s))
            ends.append(float(s + draw(st.integers(0, 2 * span))))
        submits.append(float(submit))
        eligibles.append(np.nan if kind == "held" else eligible)
        recorded = kind == "done" and draw(st.booleans())
        cpu_share.append(draw(st.floats(0, 1)) if recorded else np.nan)
        rss.append(draw(st.floats(0, 600)) if recorded else np.nan)
    users = draw(st.lists(st.sampled_from(["ann", "bo", "cy", "di"]), min_size=n, max_size=n))
    names = tuple(sorted(set(users)))
    cpus = draw(st.lists(st.integers(1, 64), min_size=n, max_size=n))
    gpus = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
    mem = draw(st.lists(st.floats(0, 512, allow_nan=False), min_size=n, max_size=n))
    f = lambda xs: np.asarray(xs, dtype=np.float64)  # noqa: E731
    elapsed = np.nan_to_num(f(ends) - f(starts), nan=0.0)
    return JobTable.build(
        job_id=np.arange(n, dtype=np.int64), user=np.array([names.index(u) for u in users], dtype=np.int64),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=f(submits), start=f(starts), end=f(ends), elapsed=elapsed,
        nnodes=np.ones(n), cpus=f(cpus), gpus=f(gpus), mem_gib=f(mem),
        eligible=f(eligibles), tasks=f(tasks), reason=np.asarray(reasons, dtype=np.int64),
        reasons=("", "JobHeldUser"), users=names, qos_names=("q",), states=("COMPLETED",),
        total_cpu=f(cpu_share) * elapsed * f(cpus), peak_rss_gib=f(rss),
    )
