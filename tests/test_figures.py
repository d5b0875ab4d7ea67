"""The dashboard's pure figure and table functions, on small snapshots worked by hand."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import numpy as np
import pytest

from app.figures import (
    CUSTOM,
    RangeError,
    bin_span,
    current_rows,
    freshness,
    relative_age,
    resolve_view,
    total_rows,
    usage_figure,
)
from app.tables import TOTAL_COLUMNS, table_spec
from app.urlstate import UrlState, parse_search
from collector.observables import KEYS as OBSERVABLES
from collector.observables import Limits
from collector.snapshot import Snapshot

HOUR = 3600
# 2026-11-25T12:30:00Z; bins are whole hours, the last (12:00) is half done.
NOW = int(datetime(2026, 11, 25, 12, 30, tzinfo=UTC).timestamp())


def snap(users: tuple[str, ...] = ("ann", "bo"), n_bins: int = 48, tz: str = "UTC") -> Snapshot:
    """ann holds 4 CPUs and 1 GPU in every bin; bo 2 CPUs in the last 10 bins only."""
    cpus = np.zeros((len(users), n_bins))
    gpus = np.zeros((len(users), n_bins))
    if users:
        cpus[0] = 4
        gpus[0] = 1
    if len(users) > 1:
        cpus[1, -10:] = 2
    series = {"NCPUS": cpus, "NGPUS": gpus, "MEMORY": cpus * 2, "NJOBS": (cpus > 0) * 1.0}
    queued = np.zeros((len(users), n_bins))
    if len(users) > 1:
        queued[1, -3:] = 8     # bo's 8 CPUs waited in the last three bins
    series.update({"QUEUED_NCPUS": queued, "QUEUED_NGPUS": queued * 0,
                   "QUEUED_MEMORY": queued * 2, "QUEUED_NJOBS": (queued > 0) * 1.0})
    # ann's ended jobs used 3 of her 4 CPUs and 1 GB; her last 5 bins' job still runs.
    used = np.zeros((len(users), n_bins))
    if users:
        used[0, :-5] = 3
    series.update({"USED_NCPUS": used, "USED_MEMORY": (used > 0) * 1.0})
    current = {o: series[o][:, -1].copy() for o in OBSERVABLES}
    return Snapshot(qos="avery", site="Test", timezone=tz, now=NOW, bin_seconds=HOUR,
                    window_start=NOW - NOW % HOUR - (n_bins - 1) * HOUR, n_bins=n_bins,
                    users=users, series=series, current=current,
                    thresholds=Limits(cpus=10, gpus=None, memory_gb=64).thresholds())


def decode(typed: dict) -> list[float]:
    return np.frombuffer(base64.b64decode(typed["bdata"]), dtype="<f4").tolist()


class TestViews:
    def test_presets_count_back_from_the_snapshot_not_the_clock(self) -> None:
        v = resolve_view(snap(), "6h")
        assert (v.start, v.end) == (NOW - 6 * HOUR, NOW)

    def test_unknown_preset_is_the_default(self) -> None:
        assert resolve_view(snap(), "5y").key == "7d"

    def test_a_preset_longer_than_the_window_is_clipped(self) -> None:
        s = snap()
        assert resolve_view(s, "30d").start == s.window_start

    def test_custom_range_in_the_site_zone(self) -> None:
        s = snap(tz="America/New_York")
        v = resolve_view(s, CUSTOM, "2026-11-25T05:00", "2026-11-25T07:00")
        assert (v.start, v.end) == (NOW - int(2.5 * HOUR), NOW - int(0.5 * HOUR))

    @pytest.mark.parametrize(("start", "end"), [
        ("2026-11-25T07:00", "2026-11-25T05:00"), ("garbage", "2026-11-25T05:00"),
        ("2030-01-01T00:00", "2030-01-02T00:00"),
    ])
    def test_bad_custom_ranges(self, start: str, end: str) -> None:
        with pytest.raises(RangeError):
            resolve_view(snap(), CUSTOM, start, end)

    def test_bin_span_covers_partial_bins(self) -> None:
        s = snap()
        assert bin_span(s, resolve_view(s, "6h")) == (41, 48)  # 06:30 falls in bin 06:00


class TestFigure:
    def test_stacked_traces_with_user_colours_and_the_limit(self) -> None:
        fig = usage_figure(snap(), "NCPUS", resolve_view(snap(), "24h"))
        names = [t["name"] for t in fig["data"] if t["meta"] == "running"]
        assert names == ["ann", "bo"]
        assert all(t["stackgroup"] == "usage" for t in fig["data"] if t["meta"] == "running")
        assert fig["data"][0]["line"]["color"] != fig["data"][1]["line"]["color"]
        assert decode(fig["data"][1]["y"])[-10:] == [2.0] * 10
        assert len(decode(fig["data"][0]["y"])) == 25  # 24 h back from 12:30 touches 25 bins
        (limit,) = fig["layout"]["shapes"]
        assert limit["y0"] == 10
        assert limit["line"]["dash"] == "dash"
        assert fig["layout"]["annotations"][0]["text"] == "QoS limit 10"

    def test_the_used_part_is_shaded_inside_the_held_stack(self) -> None:
        s = snap()
        fig = usage_figure(s, "NCPUS", resolve_view(s, "24h"))
        (used,) = [t for t in fig["data"] if t["meta"] == "used"]
        assert used["name"] == "ann"
        assert used["stackgroup"] == "used"        # its own stack, over the held one
        assert used["fillcolor"].startswith("rgba(0, 0, 0")   # a darker shade of the colour beneath
        assert used["hovertemplate"].endswith(" used")
        y = decode(used["y"])
        assert y[:-5] == [3.0] * 20                   # 3 of her 4 CPUs
        assert y[-5:] == [0.0] * 5                    # her running job: not known yet
        mem = usage_figure(s, "MEMORY", resolve_view(s, "24h"))
        assert [t["name"] for t in mem["data"] if t["meta"] == "used"] == ["ann"]
        for obs in ("NGPUS", "NJOBS"):                # no used figures for these
            assert not [t for t in usage_figure(s, obs, resolve_view(s, "24h"))["data"]
                        if t["meta"] == "used"]
        queued = usage_figure(s, "NCPUS", resolve_view(s, "24h"), show="queued")
        assert not [t for t in queued["data"] if t["meta"] == "used"]

    def test_no_limit_no_line(self) -> None:
        fig = usage_figure(snap(), "NGPUS", resolve_view(snap(), "24h"))
        assert fig["layout"]["shapes"] == []

    def test_users_without_usage_in_the_view_get_no_trace(self) -> None:
        fig = usage_figure(snap(), "NCPUS", resolve_view(snap(), CUSTOM, "2026-11-24T00:00",
                                                         "2026-11-24T06:00"))
        assert [(t["name"], t["meta"]) for t in fig["data"]] == [("ann", "running"), ("ann", "used")]

    def test_hidden_users_stay_hidden(self) -> None:
        fig = usage_figure(snap(), "NCPUS", resolve_view(snap(), "24h"), hidden={"ann"})
        assert [(t["name"], t["visible"]) for t in fig["data"]] == \
            [("ann", "legendonly"), ("bo", True), ("ann", "legendonly")]   # her used part too

    def test_empty_qos_has_a_message_not_an_error(self) -> None:
        fig = usage_figure(snap(users=()), "NCPUS", resolve_view(snap(users=()), "7d"))
        assert fig["data"] == []
        assert any(a["text"] == "No usage in this range" for a in fig["layout"]["annotations"])

    def test_times_are_site_wall_clock(self) -> None:
        fig = usage_figure(snap(tz="America/New_York"), "NCPUS",
                           resolve_view(snap(tz="America/New_York"), "6h"))
        assert fig["data"][0]["x0"] == "2026-11-25 01:00:00"  # 06:00Z in EST
        assert fig["data"][0]["dx"] == HOUR * 1000

    def test_a_dst_change_splits_each_trace_in_two_runs(self) -> None:
        s = snap(tz="America/New_York", n_bins=720)
        fig = usage_figure(s, "NCPUS", resolve_view(s, "30d"))
        ann = [t for t in fig["data"] if t["name"] == "ann" and t["meta"] == "running"]
        assert len(ann) == 2
        # 2026-11-01 01:00 EDT is followed by 01:00 EST: the second run starts there.
        assert ann[1]["x0"] == "2026-11-01 01:00:00"
        assert len(decode(ann[0]["y"])) + len(decode(ann[1]["y"])) == 720
        assert all(t["dx"] == HOUR * 1000 for t in ann)


class TestTables:
    def test_current_usage_with_shares_and_a_total(self) -> None:
        rows = current_rows(snap())
        assert [r["user"] for r in rows] == ["ann", "bo", "Total"]
        assert rows[0]["NCPUS"] == 4
        assert rows[0]["NCPUS_share"] == 40.0
        assert rows[0]["NGPUS_share"] is None  # no GPU limit
        assert rows[-1]["NCPUS"] == 6
        assert rows[-1]["is_total"]

    def test_hours_over_the_view_by_hand(self) -> None:
        s = snap()
        view = resolve_view(s, "6h")  # 06:30 -> 12:30
        rows = {r["user"]: r for r in total_rows(s, view)}
        assert rows["ann"]["NCPUS"] == pytest.approx(4 * 6)       # 4 CPUs for 6 h
        assert rows["bo"]["NCPUS"] == pytest.approx(2 * 6)        # 2 CPUs, all 6 h are in his last 10 bins
        assert rows["ann"]["NCPUS_share"] == pytest.approx(40.0)  # 24 of 10 x 6 CPU-h
        assert rows["Total"]["NCPUS"] == pytest.approx(36)
        assert rows["ann"]["MEMORY"] == pytest.approx(48)

    def test_the_total_row_is_set_apart_so_sorting_never_moves_it(self) -> None:
        spec = table_spec("total-table", TOTAL_COLUMNS,
                          total_rows(snap(), resolve_view(snap(), "6h")), "site_q_6h_by-user")
        assert [r["user"] for r in spec["rows"]] == ["ann", "bo"]
        assert spec["total"]["user"] == "Total"
        assert spec["total"]["NCPUS"] == pytest.approx(36)   # unrounded: the sum of the rows


class TestFreshness:
    def test_stale_after_three_intervals(self) -> None:
        assert not freshness(snap(), NOW + 29 * 60, 10).stale
        assert freshness(snap(), NOW + 31 * 60, 10).stale

    @pytest.mark.parametrize(("seconds", "text"), [
        (5, "just now"), (12 * 60, "12 min ago"), (3 * 3600, "3 h ago"), (3 * 86400, "3 days ago")])
    def test_relative_age(self, seconds: int, text: str) -> None:
        assert relative_age(seconds) == text


class TestUrlState:
    QOS = ("avery", "avery-b")

    def test_round_trip(self) -> None:
        state = UrlState("avery-b", "3d")
        assert parse_search(state.search(), self.QOS) == state
        custom = UrlState("avery", CUSTOM, "2026-11-20T10:00", "2026-11-21T10:00")
        assert parse_search(custom.search(), self.QOS) == custom

    @pytest.mark.parametrize("search", ["", "?qos=../../etc/passwd", "?range=99y", "?range=custom"])
    def test_anything_else_falls_back_to_defaults(self, search: str) -> None:
        assert parse_search(search, self.QOS) == UrlState("avery", "7d")


def test_traces_step_from_bin_to_bin_until_a_bin_is_too_narrow_to_see() -> None:
    """Up to STEP_POINTS bins in view each bin's average is held flat (hv);
    a 30-day view draws straight lines between the same points (a bin is
    under two pixels there, and a line has half the vertices); the values
    are the same either way."""
    s = snap(n_bins=720)
    for preset, shape in (("7d", "hv"), ("14d", "linear"), ("30d", "linear")):
        fig = usage_figure(s, "NCPUS", resolve_view(s, preset), "light", show="both")
        assert {t["line"]["shape"] for t in fig["data"]} == {shape}, preset
        assert {t["meta"] for t in fig["data"]} == {"running", "queued", "used"}
    hv = usage_figure(s, "NCPUS", resolve_view(s, "7d"), "light")
    lines = usage_figure(s, "NCPUS", resolve_view(s, "14d"), "light")
    assert decode(hv["data"][0]["y"]) == decode(lines["data"][0]["y"])[-len(decode(hv["data"][0]["y"])):]
