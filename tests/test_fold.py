"""The charts' top members and "N others" (app/fold.py), on snapshots worked by hand."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from typing import ClassVar

import numpy as np
import pytest

from app.figures import fold_view, resolve_view, usage_figure
from app.fold import choose, fold_colors, others_name
from collector.history import History
from collector.observables import KEYS
from collector.palette import OTHERS_COLOR
from collector.snapshot import Snapshot

HOUR = 3600
NOW = int(datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp())
N_BINS = 24


def snap(cpus: dict[str, float], gpus: dict[str, float] | None = None,
         queued: dict[str, float] | None = None, history: History | None = None) -> Snapshot:
    """Each user holds a constant number of CPUs (and GPUs, and queued CPUs) in every bin."""
    users = tuple(cpus)
    gpus, queued = gpus or {}, queued or {}
    series = {k: np.zeros((len(users), N_BINS)) for k in KEYS}
    for i, u in enumerate(users):
        series["NCPUS"][i] = cpus[u]
        series["MEMORY"][i] = 2 * cpus[u]
        series["NJOBS"][i] = cpus[u]          # jobs in proportion, so shares are the CPUs'
        series["NGPUS"][i] = gpus.get(u, 0)
        series["QUEUED_NCPUS"][i] = queued.get(u, 0)
    return Snapshot(qos="avery", site="Test", timezone="UTC", now=NOW, bin_seconds=HOUR,
                    window_start=NOW - N_BINS * HOUR, n_bins=N_BINS, users=users, series=series,
                    current={k: v[:, -1].copy() for k, v in series.items()},
                    thresholds={"NCPUS": 100.0, "NGPUS": None, "MEMORY": None}, history=history)


def decode(typed: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(typed["bdata"]), dtype="<f4")


def stacked_total(fig: dict) -> np.ndarray:
    return sum(decode(t["y"]) for t in fig["data"] if t["meta"] == "running")


class TestChoose:
    def test_the_largest_are_kept_in_site_order_and_the_rest_folded(self) -> None:
        names = ("a", "b", "c", "d", "e")
        keep, rest = choose(names, np.array([1.0, 5, 3, 4, 2]), set(), 2)
        assert [names[i] for i in keep] == ["b", "d"]
        assert [names[i] for i in rest] == ["a", "c", "e"]

    def test_no_fold_when_it_would_not_draw_fewer_rows(self) -> None:
        # Three members with anything and top 2: "1 others" would draw three rows too.
        assert choose(("a", "b", "c", "d"), np.array([3.0, 2, 1, 0]), set(), 2) is None
        assert choose(("a", "b", "c"), np.array([3.0, 2, 1]), set(), 0) is None

    def test_hidden_members_are_neither_drawn_nor_folded(self) -> None:
        names = ("a", "b", "c", "d", "e")
        keep, rest = choose(names, np.array([9.0, 5, 3, 4, 2]), {"a"}, 2)
        assert [names[i] for i in keep] == ["b", "d"]
        assert [names[i] for i in rest] == ["c", "e"]
        # Hiding enough leaves nothing to fold.
        assert choose(names, np.array([9.0, 5, 3, 4, 2]), {"a", "b"}, 2) is None

    def test_ties_go_to_the_earlier_name(self) -> None:
        keep, rest = choose(("a", "b", "c", "d"), np.ones(4), set(), 2)
        assert list(keep) == [0, 1]
        assert list(rest) == [2, 3]


class TestFoldHourly:
    CPUS: ClassVar[dict[str, float]] = {"ann": 10, "bo": 1, "cy": 8, "di": 2, "ed": 3, "flo": 0}

    def test_top_two_and_others_keep_the_stacked_total(self) -> None:
        s = snap(self.CPUS)
        view = resolve_view(s, "24h")
        drawn, fold = fold_view(s, view, "running", set(), 2)
        assert drawn.users == ("ann", "cy", "3 others")
        assert fold.others == "3 others"
        assert fold.folded == ("bo", "di", "ed")
        assert drawn.series["NCPUS"][2, 0] == 6 == 1 + 2 + 3
        assert drawn.current["NCPUS"][2] == 6
        fig = usage_figure(drawn, "NCPUS", view, fold=fold)
        whole = usage_figure(s, "NCPUS", view)
        assert [t["name"] for t in fig["data"] if t["meta"] == "running"] == \
            ["ann", "cy", "3 others"]
        np.testing.assert_allclose(stacked_total(fig), stacked_total(whole))
        assert fig["layout"]["yaxis"]["range"] == whole["layout"]["yaxis"]["range"]
        assert fig["layout"]["meta"]["fold"] == {"top": 2, "others": "3 others",
                                                 "folded": ["bo", "di", "ed"]}

    def test_a_member_large_on_any_chart_is_drawn(self) -> None:
        # gil holds one CPU but every GPU: the GPU chart's largest member.
        s = snap({**self.CPUS, "gil": 1}, gpus={"gil": 4})
        drawn, _ = fold_view(s, resolve_view(s, "24h"), "running", set(), 2)
        assert "gil" in drawn.users
        assert "cy" not in drawn.users

    def test_the_shown_mode_ranks(self) -> None:
        queued = {"ann": 2, "bo": 50, "di": 40, "ed": 1}
        s = snap(self.CPUS, queued=queued)
        view = resolve_view(s, "24h")
        drawn, _ = fold_view(s, view, "queued", set(), 2)
        assert drawn.users[:2] == ("bo", "di")
        drawn, _ = fold_view(s, view, "running", set(), 2)
        assert drawn.users[:2] == ("ann", "cy")

    def test_hidden_members_are_left_out_of_the_drawing(self) -> None:
        s = snap(self.CPUS)
        view = resolve_view(s, "24h")
        drawn, fold = fold_view(s, view, "running", {"ann"}, 2)
        assert drawn.users == ("cy", "ed", "2 others")
        assert fold.folded == ("bo", "di")
        assert drawn.series["NCPUS"][:, 0].sum() == 8 + 3 + 1 + 2     # ann's 10 are not there

    def test_top_zero_or_few_members_draw_everyone(self) -> None:
        s = snap(self.CPUS)
        view = resolve_view(s, "24h")
        assert fold_view(s, view, "running", set(), 0)[0] is s
        # Five members hold anything: top 4 and "1 others" would draw five rows too.
        assert fold_view(s, view, "running", set(), 4)[0] is s
        assert fold_view(s, view, "running", set(), 3)[0].users[-1] == "2 others"
        fig = usage_figure(s, "NCPUS", view)
        assert fig["layout"]["meta"]["fold"] == {"top": 0, "others": "", "folded": []}

    def test_others_are_grey(self) -> None:
        s = snap(self.CPUS)
        view = resolve_view(s, "24h")
        drawn, fold = fold_view(s, view, "running", set(), 2)
        fig = usage_figure(drawn, "NCPUS", view, colors=fold_colors({"ann": "#111111"}, fold),
                           fold=fold)
        (others,) = [t for t in fig["data"] if t["name"] == others_name(3)]
        assert others["fillcolor"] == OTHERS_COLOR


def test_a_daily_view_folds_the_history_members() -> None:
    # Three days of history for five users: a=4 CPUs a day, b=3, c=2, d=1, e=1.
    users = ("a", "b", "c", "d", "e")
    seconds = np.zeros((len(KEYS), len(users), 3))
    for i, cpus in enumerate((4, 3, 2, 1, 1)):
        seconds[KEYS.index("NCPUS"), i] = cpus * 86400
    h = History(date(2026, 11, 22), users, seconds, np.ones((len(users), 3)))
    s = snap({"a": 1}, history=h)
    view = resolve_view(s, "90d")
    drawn, fold = fold_view(s, view, "running", set(), 2)
    assert drawn.history is not None
    assert drawn.history.users == ("a", "b", "3 others")
    assert fold.folded == ("c", "d", "e")
    assert list(drawn.history.seconds[KEYS.index("NCPUS"), 2] / 86400) == [4, 4, 4]
    assert list(drawn.history.started[2]) == [3, 3, 3]
    fig = usage_figure(drawn, "NCPUS", view, fold=fold)
    whole = usage_figure(s, "NCPUS", view)
    np.testing.assert_allclose(stacked_total(fig), stacked_total(whole))
    assert [t["name"] for t in fig["data"] if t["meta"] == "running"] == ["a", "b", "3 others"]


@pytest.mark.parametrize("n", [2, 17])
def test_the_others_name_cannot_be_a_slurm_name(n: int) -> None:
    assert " " in others_name(n)
    assert others_name(n).startswith(str(n))
