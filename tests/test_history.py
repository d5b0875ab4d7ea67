"""Daily history and monthly totals, worked by hand (collector/history.py,
app/history_view.py): local days across the daylight-saving change, a job
across two months, the limit changed mid-month, parts added by their days."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from app.history_view import month_rows, months, user_month_rows
from collector.binning import DayGrid
from collector.history import History, add_histories, history_grid, history_of, midnights
from collector.jobtable import JobTable
from collector.observables import KEYS
from collector.snapshot import Snapshot, SnapshotError, from_dict, to_dict

TZ = "America/New_York"   # 2026-11-01 02:00 EDT -> 01:00 EST: that day has 25 hours
NY = ZoneInfo(TZ)
H = 3600.0
CPU = KEYS.index("NCPUS")


def t(*args: int) -> float:
    return datetime(*args, tzinfo=NY).timestamp()


def jobs(*rows: tuple[str, float, float, float]) -> JobTable:
    """(user, start, end, cpus) per job, all in one QoS."""
    users = tuple(sorted({r[0] for r in rows}))
    n = len(rows)
    return JobTable.build(
        job_id=np.arange(n), user=np.array([users.index(r[0]) for r in rows]),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=np.array([r[1] for r in rows]), start=np.array([r[1] for r in rows]),
        end=np.array([r[2] for r in rows]), elapsed=np.array([r[2] - r[1] for r in rows]),
        nnodes=np.ones(n), cpus=np.array([r[3] for r in rows]), gpus=np.zeros(n),
        mem_gib=np.zeros(n), users=users, qos_names=("avery",), states=("COMPLETED",))


def test_local_days_are_23_or_25_hours_long() -> None:
    edges = midnights(date(2026, 10, 31), 3, TZ)
    assert list(np.diff(edges) / H) == [24, 25, 24]       # Oct 31, Nov 1 (DST ends), Nov 2
    spring = midnights(date(2026, 3, 8), 1, TZ)
    assert list(np.diff(spring) / H) == [23]


def test_a_day_long_job_on_the_dst_day_counts_25_hours() -> None:
    grid = DayGrid(midnights(date(2026, 10, 31), 3, TZ), int(t(2026, 11, 3)))
    h = history_of(jobs(("ana", t(2026, 11, 1), t(2026, 11, 2), 4)), date(2026, 10, 31), grid)
    assert h.users == ("ana",)
    assert list(h.seconds[CPU, 0] / H) == [0, 100, 0]      # 4 CPUs x 25 h
    assert list(h.started[0]) == [0, 1, 0]


def test_a_job_across_two_months_splits_at_local_midnight() -> None:
    # 2 CPUs from Oct 31 20:00 to Nov 1 04:00 local: 4 h in October, 5 real hours
    # in November (01:00-02:00 happens twice that night).
    grid = DayGrid(midnights(date(2026, 10, 31), 2, TZ), int(t(2026, 11, 2)))
    h = history_of(jobs(("ana", t(2026, 10, 31, 20), t(2026, 11, 1, 4), 2)),
                   date(2026, 10, 31), grid)
    assert list(h.seconds[CPU, 0] / H) == [8, 10]
    assert list(h.started[0]) == [1, 0]


def test_a_job_still_running_counts_to_now_and_nothing_after() -> None:
    now = int(t(2026, 11, 2, 6))
    first, grid = history_grid(now, 2, TZ)
    assert first == date(2026, 11, 1)
    running = jobs(("bo", t(2026, 11, 1, 12), np.nan, 1))
    h = history_of(running, first, grid)
    assert list(h.seconds[CPU, 0] / H) == [12, 6]          # noon to midnight, then to 06:00


def test_parts_add_by_their_own_first_day() -> None:
    a = History(date(2026, 11, 1), ("ana",), np.ones((len(KEYS), 1, 3)), np.ones((1, 3)))
    b = History(date(2026, 11, 3), ("bo", "ana"), np.full((len(KEYS), 2, 2), 2.0),
                np.zeros((2, 2)))
    total = add_histories([a, b], date(2026, 11, 2), 3)     # Nov 2-4: a's first day drops out
    assert total.users == ("ana", "bo")
    assert list(total.seconds[CPU, 0]) == [1, 3, 2]
    assert list(total.seconds[CPU, 1]) == [0, 2, 2]
    assert list(total.started[0]) == [1, 1, 0]


def snapshot(history: History, now: float, steps: tuple[tuple[int, float | None], ...]) -> Snapshot:
    n = 1
    zeros = {k: np.zeros((len(history.users), n)) for k in KEYS}
    return Snapshot(qos="avery", site="Lab", timezone=TZ, now=int(now), bin_seconds=3600,
                    window_start=int(now) - 3600, n_bins=n, users=history.users, series=zeros,
                    current={k: np.zeros(len(history.users)) for k in KEYS},
                    thresholds={"NCPUS": steps[-1][1], "NGPUS": None, "MEMORY": None},
                    threshold_steps={"NCPUS": steps}, history=history)


def test_monthly_totals_capacity_with_a_limit_raised_mid_month() -> None:
    # October 30 to November 30: 10 CPUs on Oct 31 (240 CPU-h) and 5 CPUs all of
    # November 10 (120 CPU-h). The limit is 10 CPUs until Nov 16 00:00, then 20.
    first = date(2026, 10, 30)
    now = t(2026, 12, 1)
    n_days = (date(2026, 12, 1) - first).days
    grid = DayGrid(midnights(first, n_days, TZ), int(now))
    h = history_of(jobs(("ana", t(2026, 10, 31), t(2026, 11, 1), 10),
                        ("bo", t(2026, 11, 10), t(2026, 11, 11), 5)), first, grid)
    steps = ((int(t(2026, 10, 1)), 10.0), (int(t(2026, 11, 16)), 20.0))
    snap = snapshot(h, now, steps)
    oct_, nov = months(snap)
    assert (oct_.label, nov.label) == ("2026-10", "2026-11")
    assert oct_.capacity["NCPUS"] == pytest.approx(10 * 48)          # Oct 30-31: 48 h
    # November has 721 hours (the extra hour on Nov 1): 15 days at 10, 15 at 20.
    assert nov.capacity["NCPUS"] == pytest.approx(10 * (15 * 24 + 1) + 20 * 15 * 24)
    rows = month_rows(snap)
    assert [r["month"] for r in rows] == ["2026-11", "2026-10"]
    assert rows[0]["NCPUS"] == pytest.approx(120)
    assert rows[0]["NCPUS_share"] == pytest.approx(100 * 120 / (10 * 361 + 20 * 360))
    assert rows[1]["NCPUS"] == pytest.approx(240)
    assert rows[1]["NCPUS_share"] == pytest.approx(50.0)
    assert (rows[0]["jobs"], rows[1]["jobs"]) == (1, 1)
    assert rows[0]["NGPUS_share"] is None                          # no GPU limit
    users = {r["user"]: r for r in user_month_rows(snap)}
    assert users["bo"]["NCPUS_this"] == pytest.approx(120)
    assert users["ana"]["NCPUS_last"] == pytest.approx(240)
    assert users["ana"]["NCPUS_this"] == 0
    assert users["Total"]["NCPUS_this"] == pytest.approx(120)
    assert users["Total"]["is_total"]


def test_the_history_round_trips_through_the_snapshot_file() -> None:
    first = date(2026, 10, 31)
    grid = DayGrid(midnights(first, 3, TZ), int(t(2026, 11, 3)))
    h = history_of(jobs(("ana", t(2026, 11, 1), t(2026, 11, 2), 4)), first, grid)
    snap = snapshot(h, t(2026, 11, 3), ((int(t(2026, 10, 1)), 10.0),))
    doc = to_dict(snap)
    assert doc["history"]["first_day"] == "2026-10-31"
    assert doc["history"]["hours"]["NCPUS"] == [[0.0, 100.0, 0.0]]
    assert len(doc["history"]["day_starts"]) == 4
    back = from_dict(doc).history
    assert back is not None
    assert back.first == first
    np.testing.assert_allclose(back.seconds, h.seconds)
    assert from_dict({**doc, "history": None}).history is None
    bad = to_dict(snap)   # a history whose rows do not fit its days
    bad["history"]["hours"]["NCPUS"] = [[1.0, 2.0]]
    with pytest.raises(SnapshotError, match="history is malformed"):
        from_dict(bad)


def test_ranges_over_30_days_draw_daily_averages_from_the_history() -> None:
    from app.figures import DAILY_SUFFIX, resolve_view, total_rows, usage_figure

    first = date(2026, 10, 31)
    now = t(2026, 11, 2, 12)                       # noon of the third day
    grid = DayGrid(midnights(first, 3, TZ), int(now))
    h = history_of(jobs(("ana", t(2026, 11, 1), t(2026, 11, 2), 4),
                        ("bo", t(2026, 11, 2), np.nan, 2)), first, grid)
    snap = snapshot(h, now, ((int(t(2026, 10, 1)), 10.0),))
    view = resolve_view(snap, "90d")
    assert view.start == int(t(2026, 10, 31))       # the history's first day, not now - 90 d
    fig = usage_figure(snap, "NCPUS", view)
    assert fig["layout"]["title"]["text"].endswith(DAILY_SUFFIX)
    (ana,) = [tr for tr in fig["data"] if tr["name"] == "ana"]
    assert (ana["x0"], ana["dx"]) == ("2026-10-31", 86400000)   # a calendar day per point
    values = np.frombuffer(__import__("base64").b64decode(ana["y"]["bdata"]), dtype="<f4")
    assert list(values) == [0, 4, 0]                # 100 CPU-h over the 25-hour day: 4 CPUs
    (bo,) = [tr for tr in fig["data"] if tr["name"] == "bo"]
    values = np.frombuffer(__import__("base64").b64decode(bo["y"]["bdata"]), dtype="<f4")
    assert list(values) == [0, 0, 2]                # today: 12 h so far, 2 CPUs on average
    rows = {r["user"]: r for r in total_rows(snap, view)}
    assert rows["ana"]["NCPUS"] == pytest.approx(100)
    assert rows["bo"]["NCPUS"] == pytest.approx(24)
    assert rows["Total"]["NCPUS"] == pytest.approx(124)
    # Within the window the charts stay hourly (from the series; none in this snapshot).
    hourly = usage_figure(snap, "NCPUS", resolve_view(snap, "24h"))
    assert not hourly["layout"]["title"]["text"].endswith(DAILY_SUFFIX)


def test_a_segment_keeps_only_the_days_its_jobs_touch() -> None:
    """The kept days of a cold segment (collector/store/days.py) span its
    jobs, not the whole history: a day's segment stays small at a year."""
    from collector.store.days import _segment_history

    table = jobs(("ana", t(2026, 11, 20, 9), t(2026, 11, 21, 3), 2))
    (h,) = _segment_history({"": table}, date(2025, 12, 1), TZ).values()
    assert (h.first, h.n_days) == (date(2026, 11, 20), 2)
    assert list(h.seconds[CPU, 0] / H) == [30, 6]             # 15 h, then 3 h, of 2 CPUs
    # Placed by its first day, it adds into a year's history where it belongs.
    year = add_histories([h], date(2025, 12, 1), 366)
    assert year.seconds[CPU, 0].sum() / H == pytest.approx(36)
    assert year.seconds[CPU, 0, (date(2026, 11, 20) - date(2025, 12, 1)).days] / H == 30


def test_a_months_efficiency_is_what_the_ended_jobs_used_of_what_was_held() -> None:
    # ana held 10 CPUs for a day and used 2.5 on average (her job's TotalCPU over
    # its ElapsedRaw); bo held 4 for a day and his job recorded nothing (no
    # steps): the month's CPUs used of held is 60 of 336 CPU-hours.
    first = date(2026, 11, 1)
    now = t(2026, 11, 20)
    grid = DayGrid(midnights(first, 19, TZ), int(now))
    table = jobs(("ana", t(2026, 11, 5), t(2026, 11, 6), 10), ("bo", t(2026, 11, 7),
                                                                t(2026, 11, 8), 4))
    used = np.array([2.5 * 86400, np.nan])                    # TotalCPU, s
    table = replace(table, total_cpu=used, elapsed=table.end - table.start,
                    usage_read=np.full(2, now), peak_rss_gib=np.array([0.0, np.nan]))
    snap = snapshot(history_of(table, first, grid), now, ((int(t(2026, 11, 1)), 64.0),))
    (row,) = month_rows(snap)
    assert row["NCPUS"] == pytest.approx(10 * 24 + 4 * 24)            # CPU-hours held
    assert row["USED_NCPUS_of_held"] == pytest.approx(100 * 2.5 * 24 / (14 * 24))
    assert row["USED_MEMORY_of_held"] is None                       # nothing recorded
    # Per member: ana used 25 % of what she held, bo's is not known; the total
    # is the share of all the hours held, not a sum of shares.
    users = {r["user"]: r for r in user_month_rows(snap)}
    assert users["ana"]["USED_NCPUS_of_held_this"] == pytest.approx(25.0)
    assert users["bo"]["USED_NCPUS_of_held_this"] is None
    assert users["Total"]["USED_NCPUS_of_held_this"] == pytest.approx(100 * 60 / 336)
    assert users["ana"]["USED_NCPUS_of_held_last"] is None          # no last month here
    # A history of nothing but empty months before the first job leaves them out.
    early = History(date(2026, 9, 1), snap.history.users,
                    np.concatenate([np.zeros((len(KEYS), 2, 61)), snap.history.seconds], axis=2),
                    np.concatenate([np.zeros((2, 61)), snap.history.started], axis=1))
    assert [m.label for m in months(snapshot(early, now, ((int(t(2026, 9, 1)), 64.0),)))] == \
        ["2026-11"]
