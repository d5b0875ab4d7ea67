"""The synthetic history: parseable, deterministic, and with every feature it promises."""

from __future__ import annotations

import numpy as np

from collector.binning import bin_usage, make_window
from collector.parse import parse_sacct
from collector.synth import SynthQos, synth_sacct, user_names

NOW = 1_764_000_000


def test_same_seed_same_bytes() -> None:
    a = synth_sacct(NOW, 3, 500, seed=4)
    assert a == synth_sacct(NOW, 3, 500, seed=4)
    assert a != synth_sacct(NOW, 3, 500, seed=5)


def test_usage_adds_what_ended_jobs_used_and_changes_nothing_else() -> None:
    plain = parse_sacct(synth_sacct(NOW, 5, 3000, seed=2, steps=0.8), "UTC").jobs
    r = parse_sacct(synth_sacct(NOW, 5, 3000, seed=2, steps=0.8, usage=True), "UTC")
    assert r.bad_lines == 0
    assert not r.bad_fields
    j = r.jobs
    for column in ("job_id", "start", "end", "cpus", "mem_gib", "gpus", "user"):
        assert np.array_equal(getattr(plain, column), getattr(j, column), equal_nan=True), column
    ended = ~np.isnan(j.end) & ~np.isnan(j.start) & (j.elapsed > 0)
    recorded = ~np.isnan(j.peak_rss_gib)
    assert recorded.sum() > 0.5 * ended.sum()          # most ended jobs have steps
    assert not (recorded & np.isnan(j.end)).any()      # running jobs: nothing yet
    cpu = ~np.isnan(j.total_cpu)
    # Never more than was held (a step's rounding to the millisecond aside).
    assert (j.total_cpu[cpu] <= j.elapsed[cpu] * j.cpus[cpu] + 0.01).all()
    assert (j.peak_rss_gib[recorded] <= j.mem_gib[recorded] + 1e-9).all()
    share = j.total_cpu[cpu & ended] / (j.elapsed * j.cpus)[cpu & ended]
    assert 0.2 < np.median(share) < 0.95               # habits differ: not all 0, not all 1


def test_parses_cleanly_with_every_feature() -> None:
    text = synth_sacct(NOW, 10, 5000, n_users=20, tz="America/New_York", seed=1, steps=0.5,
                       qos=(SynthQos("a", gpu_fraction=0.3), SynthQos("b")))
    r = parse_sacct(text, "America/New_York")
    assert r.bad_lines == 0
    assert r.step_lines > 0
    assert len(r.jobs) == 5000
    body = text.decode()
    assert "gres/gpu:" in body
    assert "gres/gpu=" in body
    assert "|PENDING|" in body
    assert "|RUNNING|" in body
    assert "CANCELLED by " in body
    assert "Mc|" in body  # old-style ReqMem
    assert any("_" in line.split("|")[1] for line in body.splitlines()[1:50])  # array tasks
    assert np.isnan(r.jobs.start).any()
    assert np.isnan(r.jobs.end).any()
    assert (r.jobs.start < NOW - 10 * 86400).any()  # carry-in jobs
    assert set(r.jobs.qos_names) == {"a", "b"}


def test_users_are_heavy_tailed() -> None:
    r = parse_sacct(synth_sacct(NOW, 10, 20000, n_users=50, seed=2))
    counts = np.sort(np.bincount(r.jobs.user))[::-1]
    assert counts[:5].sum() > counts.sum() / 2


def test_fifo_queue_holds_the_limit() -> None:
    text = synth_sacct(NOW, 5, 4000, n_users=10, seed=3, qos=(SynthQos("a", cpu_limit=100),))
    r = parse_sacct(text)
    u = bin_usage(r.jobs, make_window(NOW, 60, 5 * 1440))
    assert u.series["NCPUS"].sum(axis=0).max() <= 100 + 1e-9


def test_user_names_are_distinct() -> None:
    names = user_names(500)
    assert len(set(names)) == 500
