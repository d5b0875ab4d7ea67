"""Binning: windows, hand-worked examples, and the invariants as properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.binning import Usage, bin_usage, make_window
from collector.observables import KEYS as OBSERVABLES
from collector.parse import JobTable, parse_sacct
from tests.strategies import job_tables, windows


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def jobs(*rows: tuple[str, float, float, float, float, float]) -> JobTable:
    """rows of (user, start, end, cpus, gpus, mem_gib); NaN start = never started."""
    users = tuple(sorted({r[0] for r in rows}))
    n = len(rows)
    col = lambda i: np.array([r[i] for r in rows], dtype=np.float64)  # noqa: E731
    return JobTable.build(
        job_id=np.arange(n), user=np.array([users.index(r[0]) for r in rows]),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=col(1), start=col(1), end=col(2), elapsed=np.zeros(n), nnodes=np.ones(n),
        cpus=col(3), gpus=col(4), mem_gib=col(5), users=users, qos_names=("q",),
        states=("COMPLETED",),
    )


def series(usage: Usage, obs: str, user: str) -> list[float]:
    return usage.series[obs][usage.users.index(user)].tolist()


class TestWindow:
    def test_bins_are_aligned_to_the_epoch(self) -> None:
        w = make_window(ts("2026-11-25T10:25:00"), 600, 6)
        assert w.start % 600 == 0
        assert w.start == ts("2026-11-25T09:30:00")
        assert w.end == ts("2026-11-25T10:30:00")
        assert w.bin_lengths().tolist() == [600] * 5 + [300]

    def test_now_on_a_boundary_closes_the_bin_before_it(self) -> None:
        w = make_window(ts("2026-11-25T10:00:00"), 3600, 24)
        assert w.end == ts("2026-11-25T10:00:00")
        assert w.bin_lengths()[-1] == 3600
        assert w.bin_starts()[-1] == ts("2026-11-25T09:00:00")

    def test_fractional_now_is_floored_to_the_second(self) -> None:
        assert make_window(1000.9, 60, 2).now == 1000

    def test_bins_stay_put_between_runs(self) -> None:
        a = make_window(ts("2026-11-25T10:25:00"), 3600, 720)
        b = make_window(ts("2026-11-25T10:35:00"), 3600, 720)
        assert a.start == b.start

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            make_window(0, 0, 10)


class TestHandWorked:
    def test_a_job_over_four_ten_minute_bins(self) -> None:
        # 09:55 -> 10:25, now 10:25: 5 min of the 09:50 bin, two full bins, and
        # the last bin (10:20-10:25) is partial and averaged over its 5 minutes.
        w = make_window(ts("2026-11-25T10:25:00"), 600, 6)
        u = bin_usage(jobs(("ann", ts("2026-11-25T09:55:00"), ts("2026-11-25T10:25:00"), 4, 1, 8)), w)
        assert series(u, "NCPUS", "ann") == [0, 0, 2, 4, 4, 4]
        assert series(u, "NGPUS", "ann") == [0, 0, 0.5, 1, 1, 1]
        assert series(u, "MEMORY", "ann") == [0, 0, 4, 8, 8, 8]
        assert series(u, "NJOBS", "ann") == [0, 0, 0.5, 1, 1, 1]
        assert u.current["NCPUS"].tolist() == [0]  # it ended exactly at now
        assert u.jobs_counted == 1

    def test_running_job_counts_until_now_and_is_current(self) -> None:
        w = make_window(ts("2026-11-25T10:30:00"), 3600, 2)
        u = bin_usage(jobs(("ann", ts("2026-11-25T09:30:00"), np.nan, 2, 0, 1)), w)
        assert series(u, "NCPUS", "ann") == [1, 2]  # half of 09:00, all of the partial 10:00
        assert u.current["NCPUS"].tolist() == [2]
        assert u.current["NJOBS"].tolist() == [1]

    def test_end_after_now_is_clipped_and_current(self) -> None:
        # Replaying with --now in the past: the job is running at now.
        w = make_window(ts("2026-11-25T10:00:00"), 3600, 1)
        u = bin_usage(jobs(("ann", ts("2026-11-25T09:00:00"), ts("2026-11-25T12:00:00"), 3, 0, 0)), w)
        assert series(u, "NCPUS", "ann") == [3]
        assert u.current["NCPUS"].tolist() == [3]

    def test_start_after_now_counts_nothing(self) -> None:
        w = make_window(ts("2026-11-25T10:00:00"), 3600, 1)
        u = bin_usage(jobs(("ann", ts("2026-11-25T10:30:00"), ts("2026-11-25T11:00:00"), 3, 0, 0)), w)
        assert u.users == ()

    def test_never_started_counts_nothing(self) -> None:
        w = make_window(ts("2026-11-25T10:00:00"), 3600, 2)
        u = bin_usage(jobs(("ann", np.nan, np.nan, 20, 4, 64), ("bo", ts("2026-11-25T09:00:00"), ts("2026-11-25T09:30:00"), 1, 0, 0)), w)
        assert u.users == ("bo",)
        assert u.jobs_counted == 1

    def test_carry_in_job_counts_only_inside_the_window(self) -> None:
        w = make_window(ts("2026-11-25T10:00:00"), 3600, 2)
        u = bin_usage(jobs(("ann", ts("2026-11-20T00:00:00"), ts("2026-11-25T08:30:00"), 8, 0, 0)), w)
        assert series(u, "NCPUS", "ann") == [4, 0]

    def test_users_sorted_by_cpu_time_then_name(self) -> None:
        w = make_window(ts("2026-11-25T10:00:00"), 3600, 1)
        t0, t1 = ts("2026-11-25T09:00:00"), ts("2026-11-25T10:00:00")
        u = bin_usage(jobs(("cy", t0, t1, 1, 0, 0), ("ann", t0, t1, 1, 0, 0), ("bo", t0, t1, 9, 0, 0)), w)
        assert u.users == ("bo", "ann", "cy")

    def test_multi_node_job_is_one_job(self) -> None:
        w = make_window(ts("2026-11-25T10:00:00"), 3600, 1)
        j = jobs(("ann", ts("2026-11-25T09:00:00"), ts("2026-11-25T10:00:00"), 128, 0, 0))
        j = JobTable(**{**j.__dict__, "nnodes": np.array([4.0])})
        assert series(bin_usage(j, w), "NJOBS", "ann") == [1]

    def test_empty_table(self) -> None:
        u = bin_usage(JobTable.empty(), make_window(10_000, 600, 3))
        assert u.users == ()
        assert all(u.series[o].shape == (0, 3) for o in OBSERVABLES)


class TestRealCapture:
    def test_avery_sample_per_user_resource_seconds(self, samples: Path) -> None:
        """Worked by hand from sacct_avery.txt (ElapsedRaw x resources)."""
        parsed = parse_sacct((samples / "sacct_avery.txt").read_bytes())
        u = bin_usage(parsed.jobs, make_window(ts("2026-11-25T21:00:00"), 3600, 24))
        last = {o: dict(zip(u.users, u.series[o][:, -1] * 3600, strict=True)) for o in OBSERVABLES}
        # alice: job 6 (4 CPU, 2 GPU, 8 GiB, 40 s), job 7 (2, 0, 4, 20 s), job 25 (1, 0, 1, 5 s)
        assert last["NCPUS"]["alice"] == pytest.approx(4 * 40 + 2 * 20 + 5)
        assert last["NGPUS"]["alice"] == pytest.approx(2 * 40)
        assert last["MEMORY"]["alice"] == pytest.approx(8 * 40 + 4 * 20 + 5)
        assert last["NJOBS"]["alice"] == pytest.approx(40 + 20 + 5)
        # bob: job 8 (8, 1, 32, 45 s), job 10 (3, 0, 6, 10 s), array 9_1..9_4 (1, 0, 1, 15 s each)
        assert last["NCPUS"]["bob"] == pytest.approx(8 * 45 + 3 * 10 + 4 * 15)
        assert last["NGPUS"]["bob"] == pytest.approx(45)
        assert last["MEMORY"]["bob"] == pytest.approx(32 * 45 + 6 * 10 + 4 * 15)
        # carol: 11 (1 CPU, 500M, 5 s), 12 (2, 1G, 7 s), 13 (1, 1G, 89 s), 14 (1, 1G, 5 s);
        # 26 was rejected (never ran) though it asked for 9 GPUs.
        assert last["NCPUS"]["carol"] == pytest.approx(5 + 2 * 7 + 89 + 5)
        assert last["MEMORY"]["carol"] == pytest.approx(500 / 1024 * 5 + 7 + 89 + 5)
        assert last["NGPUS"]["carol"] == 0
        assert u.series["NCPUS"][:, :-1].sum() == 0  # nothing before 20:00

    def test_running_sample_current_usage(self, samples: Path) -> None:
        parsed = parse_sacct((samples / "sacct_avery_during_run_run1.txt").read_bytes())
        u = bin_usage(parsed.jobs, make_window(ts("2026-11-25T20:36:20"), 3600, 24))
        cur = {o: dict(zip(u.users, u.current[o].tolist(), strict=True)) for o in OBSERVABLES}
        assert cur["NCPUS"] == {"alice": 6, "bob": 12, "carol": 1}
        assert cur["NGPUS"] == {"alice": 2, "bob": 1, "carol": 0}
        assert cur["MEMORY"] == {"alice": 12, "bob": 36, "carol": 1}
        assert cur["NJOBS"] == {"alice": 2, "bob": 5, "carol": 1}
        # The last bin runs 20:00:00 -> now (20:36:20). carol's running job 9
        # counts from its start (20:36:06) to now: 14 s; her ended jobs 7, 8, 10
        # ran 5 s (1 CPU), 4 s (2 CPUs) and 5 s (1 CPU).
        last_bin_seconds = 36 * 60 + 20
        cpu_seconds = u.series["NCPUS"][u.users.index("carol"), -1] * last_bin_seconds
        assert cpu_seconds == pytest.approx(14 + 5 + 2 * 4 + 5)


def _waited_seconds(j: JobTable, w) -> np.ndarray:
    """Seconds each job waited inside the window, worked out row by row."""
    out = np.zeros(len(j))
    for i in range(len(j)):
        if np.isnan(j.start[i]) and j.reasons[j.reason[i]] == "JobHeldUser":
            continue  # held: not waiting for resources
        since = j.submit[i] if np.isnan(j.eligible[i]) else j.eligible[i]
        if not np.isnan(j.start[i]):
            until = j.start[i]
        elif not np.isnan(j.end[i]):
            until = j.end[i]   # cancelled while pending
        else:
            until = w.now
        out[i] = max(0.0, min(until, w.now) - max(since, w.start))
    return out


def _overlap_seconds(j: JobTable, w) -> np.ndarray:
    start = np.maximum(j.start, w.start)
    stop = np.where(np.isnan(j.end), w.now, np.minimum(j.end, w.now))
    return np.where(np.isnan(j.start), 0, np.clip(stop - start, 0, None))


class TestProperties:
    @given(data=st.data(), w=windows())
    @settings(max_examples=150, deadline=None)
    def test_binning_conserves_resource_seconds(self, data: st.DataObject, w) -> None:
        j = data.draw(job_tables(w))
        u = bin_usage(j, w)
        overlap = _overlap_seconds(j, w)
        waited = _waited_seconds(j, w)
        expected = {"NCPUS": j.cpus * overlap, "NGPUS": j.gpus * overlap,
                    "MEMORY": j.mem_gib * overlap, "NJOBS": overlap,
                    # CPU time spread evenly over the run; the peak held all along.
                    "USED_NCPUS": np.where(j.elapsed > 0, np.nan_to_num(j.total_cpu)
                                           / np.maximum(j.elapsed, 1), 0) * overlap,
                    "USED_MEMORY": np.nan_to_num(j.peak_rss_gib) * overlap,
                    "QUEUED_NCPUS": j.req_cpus * j.tasks * waited,
                    "QUEUED_NGPUS": j.req_gpus * j.tasks * waited,
                    "QUEUED_MEMORY": j.req_mem_gib * j.tasks * waited,
                    "QUEUED_NJOBS": j.tasks * waited}
        assert set(expected) == set(OBSERVABLES)
        for obs, per_job in expected.items():
            got = (u.series[obs] * w.bin_lengths()).sum()
            assert got == pytest.approx(per_job.sum(), rel=1e-9, abs=1e-6), obs

    @given(data=st.data(), w=windows())
    @settings(max_examples=100, deadline=None)
    def test_order_of_jobs_changes_nothing(self, data: st.DataObject, w) -> None:
        j = data.draw(job_tables(w))
        perm = data.draw(st.permutations(list(range(len(j)))))
        a, b = bin_usage(j, w), bin_usage(j.take(np.asarray(perm, dtype=np.int64)), w)
        assert a.users == b.users
        for obs in OBSERVABLES:
            np.testing.assert_allclose(a.series[obs], b.series[obs], atol=1e-9)
            np.testing.assert_allclose(a.current[obs], b.current[obs])

    @given(data=st.data(), w=windows())
    @settings(max_examples=100, deadline=None)
    def test_a_longer_window_only_adds_bins_in_front(self, data: st.DataObject, w) -> None:
        j = data.draw(job_tables(w))
        longer = make_window(w.now, w.bin_seconds, 2 * w.n_bins)
        a, b = bin_usage(j, w), bin_usage(j, longer)
        for obs in OBSERVABLES:
            for user in a.users:
                np.testing.assert_allclose(
                    a.series[obs][a.users.index(user)],
                    b.series[obs][b.users.index(user)][w.n_bins:], atol=1e-9)

    @given(data=st.data(), w=windows())
    @settings(max_examples=100, deadline=None)
    def test_values_are_never_negative(self, data: st.DataObject, w) -> None:
        u = bin_usage(data.draw(job_tables(w)), w)
        assert all((u.series[o] >= -1e-9).all() for o in OBSERVABLES)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_fold_rows_sums_each_row_into_its_target_as_one_add_at_would(data: st.DataObject) -> None:
    """The sort-and-reduceat fold against numpy's plain scattered add, on any
    shape, axis and mapping (targets left empty stay zero)."""
    from collector.binning import fold_rows
    ndim = data.draw(st.integers(1, 3))
    shape = data.draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))
    axis = data.draw(st.integers(0, ndim - 1))
    n = data.draw(st.integers(1, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    values = rng.integers(0, 100, size=shape).astype(float)
    to = rng.integers(0, n, size=shape[axis])
    expected = np.zeros([*shape[:axis], n, *shape[axis + 1:]])
    np.add.at(np.moveaxis(expected, axis, 0), to, np.moveaxis(values, axis, 0))
    np.testing.assert_array_equal(fold_rows(values, to, n, axis), expected)


def test_combined_codes_a_few_rows_among_many_site_users_by_their_own_keys(samples: Path) -> None:
    """A QoS's rows keep the site's name tables; combined() names just the
    (user, account, partition) present, whichever path it takes."""
    from collector.jobtable import COMBO_SEP
    t = parse_sacct((samples / "sacct_avery.txt").read_bytes()).jobs
    many = dataclasses.replace(t, users=t.users + tuple(f"u{i}" for i in range(200_000)))
    for table in (t, many):
        c = table.combined()
        names = [c.users[k] for k in c.user]
        assert [n.split(COMBO_SEP)[0] for n in names] == [table.users[u] for u in table.user]
        assert len(set(c.users)) == len(c.users) == len(set(names))
