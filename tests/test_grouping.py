"""Grouping by account and partition, worked by hand: the binning sums per
(user, account, partition) and each grouping is a fold of those sums; the
snapshot keeps the groups and the page's view swaps them in; the URL keeps
the grouping."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from app.urlstate import UrlState, parse_search
from collector.binning import Window, bin_seconds, fold, usage_of
from collector.history import History, fold_history, history_grid, history_of
from collector.jobtable import JobTable
from collector.observables import KEYS
from collector.snapshot import Grouping, Snapshot, from_dict, to_dict

T = 1_790_000_000 - 1_790_000_000 % 3600
H = 3600


def jobs() -> JobTable:
    """alice: 4 CPUs for two hours on account A, partition P1, and 2 CPUs for
    one hour on B, P2; bob: 8 CPUs for half an hour on A, P2."""
    rows = [("alice", "A", "P1", T, T + 2 * H, 4), ("alice", "B", "P2", T, T + H, 2),
            ("bob", "A", "P2", T + H, T + H + H // 2, 8)]
    n = len(rows)
    col = lambda i: np.array([r[i] for r in rows], dtype=float)  # noqa: E731
    return JobTable.build(
        job_id=np.arange(n), user=np.array([("alice", "bob").index(r[0]) for r in rows]),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=col(3), start=col(3), end=col(4), elapsed=col(4) - col(3), nnodes=np.ones(n),
        cpus=col(5), gpus=np.zeros(n), mem_gib=np.zeros(n), users=("alice", "bob"),
        qos_names=("avery",), states=("COMPLETED",),
        account=np.array([("A", "B").index(r[1]) for r in rows]), accounts=("A", "B"),
        partition=np.array([("P1", "P2").index(r[2]) for r in rows]), partitions=("P1", "P2"))


WINDOW = Window(start=T, now=T + 3 * H, bin_seconds=H, n_bins=3)


@pytest.mark.parametrize(("by", "expected"), [
    ("user", {"alice": [6, 4, 0], "bob": [0, 4, 0]}),
    ("account", {"A": [4, 8, 0], "B": [2, 0, 0]}),
    ("partition", {"P1": [4, 4, 0], "P2": [2, 4, 0]}),
])
def test_each_grouping_is_a_fold_of_the_same_sums(by: str, expected: dict) -> None:
    combined = bin_seconds(jobs().combined(), WINDOW)
    assert len(combined.users) == 3                   # one per (user, account, partition)
    usage = usage_of(fold(combined, by), WINDOW)
    got = {u: usage.series["NCPUS"][i].tolist() for i, u in enumerate(usage.users)}
    assert got == expected
    # Folding conserves resource-seconds and the job count.
    assert fold(combined, by).seconds.sum() == pytest.approx(combined.seconds.sum())
    assert usage.jobs_counted == 3


def test_the_users_fold_equals_binning_the_users_directly() -> None:
    direct = usage_of(bin_seconds(jobs(), WINDOW), WINDOW)
    folded = usage_of(fold(bin_seconds(jobs().combined(), WINDOW), "user"), WINDOW)
    assert folded.users == direct.users
    for k in KEYS:
        np.testing.assert_allclose(folded.series[k], direct.series[k])
        np.testing.assert_allclose(folded.current[k], direct.current[k])


def test_the_daily_history_folds_the_same_way_and_counts_jobs_per_group() -> None:
    first, grid = history_grid(T + 3 * H, 2, "UTC")
    h = history_of(jobs().combined(), first, grid)
    by_account = fold_history(h, "account")
    assert by_account.users == ("A", "B")
    cpu_hours = by_account.seconds[KEYS.index("NCPUS")].sum(axis=1) / H
    assert cpu_hours.tolist() == [4 * 2 + 8 * 0.5, 2.0]
    assert by_account.started.sum(axis=1).tolist() == [2.0, 1.0]
    assert fold_history(h, "user").users == ("alice", "bob")


def test_names_without_an_account_or_partition_fold_under_not_known() -> None:
    plain = History(date(2026, 11, 1), ("alice",), np.ones((len(KEYS), 1, 2)), np.ones((1, 2)))
    assert fold_history(plain, "account").users == ("",)
    assert fold_history(plain, "user").users == ("alice",)


def test_the_groups_round_trip_through_the_snapshot_and_swap_in_for_the_users() -> None:
    usage = usage_of(fold(bin_seconds(jobs().combined(), WINDOW), "user"), WINDOW)
    part = usage_of(fold(bin_seconds(jobs().combined(), WINDOW), "partition"), WINDOW)
    snap = Snapshot(qos="avery", site="S", timezone="UTC", now=WINDOW.now, bin_seconds=H,
                    window_start=T, n_bins=3, users=usage.users, series=usage.series,
                    current=usage.current, thresholds={"NCPUS": 10.0},
                    groups={"partition": Grouping(part.users, part.series, part.current)})
    back = from_dict(to_dict(snap))
    assert set(back.groups) == {"partition"}
    shown = back.grouped("partition")
    assert shown.users == ("P1", "P2") or shown.users == ("P2", "P1")
    np.testing.assert_allclose(shown.series["NCPUS"].sum(axis=0), [6, 8, 0])
    assert shown.thresholds == snap.thresholds         # the limit line is the QoS's still
    assert back.grouped("account") is back              # not collected: the users'
    assert back.grouped("user") is back


def test_the_url_keeps_the_grouping_and_refuses_an_unknown_one() -> None:
    state = UrlState("avery", "7d", group="account")
    assert state.search() == "?qos=avery&range=7d&group=account"
    assert parse_search(state.search(), ("avery",)) == state
    assert parse_search("?qos=avery&group=lab", ("avery",)).group == "user"
    assert "group" not in UrlState("avery").search()


def test_a_grouped_tables_total_is_the_users_total_to_the_last_digit() -> None:
    """The groups' series are stored rounded on their own, so summing them can
    miss the users' sum in the last place (CI saw 146,019.1 against 146,019.2
    when the page switched to accounts): the Total rows sum the users."""
    from app.figures import current_rows, resolve_view, total_rows
    usage = usage_of(fold(bin_seconds(jobs().combined(), WINDOW), "user"), WINDOW)
    part = usage_of(fold(bin_seconds(jobs().combined(), WINDOW), "partition"), WINDOW)
    nudged = {o: s + 0.04 / len(part.users) for o, s in part.series.items()}   # a rounding's worth
    snap = Snapshot(qos="avery", site="S", timezone="UTC", now=WINDOW.now, bin_seconds=H,
                    window_start=T, n_bins=3, users=usage.users, series=usage.series,
                    current=usage.current, thresholds={"NCPUS": 10.0},
                    groups={"partition": Grouping(part.users, nudged,
                                                  {o: c + 0.01 for o, c in part.current.items()})})
    view = resolve_view(snap, "6h")
    g = snap.grouped("partition")
    users_total = total_rows(snap, view)[-1]
    assert total_rows(g, view)[-1]["NCPUS"] != users_total["NCPUS"]       # the drift is there
    assert total_rows(g, view, users_of=snap)[-1]["NCPUS"] == users_total["NCPUS"]
    assert current_rows(g, users_of=snap)[-1]["NCPUS"] == current_rows(snap)[-1]["NCPUS"]
    assert {r["user"] for r in total_rows(g, view, users_of=snap)[:-1]} <= set(part.users)
