"""The job store's pure parts (keys, merge, prune, plan) and its file on small known inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collector.parse import JobTable, parse_sacct
from collector.store import (
    COLD_FILE,
    STATE_FILE,
    Store,
    StoreCorrupt,
    StoreState,
    concat,
    day_chunks,
    dedupe_last,
    load_store,
    merge,
    open_job_ids,
    plan_sync,
    prune,
    record_keys,
    save_store,
    update,
)

NAN = float("nan")


def table(rows: list[tuple], users: tuple[str, ...] = ("alice", "bob")) -> JobTable:
    """rows: (job_id, user, submit, start, end, cpus)."""
    n = len(rows)
    col = lambda i: np.array([r[i] for r in rows], dtype=float)  # noqa: E731
    return JobTable.build(
        job_id=np.array([r[0] for r in rows], dtype=np.int64),
        user=np.array([users.index(r[1]) for r in rows], dtype=np.int64),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=col(2), start=col(3), end=col(4), elapsed=np.zeros(n), nnodes=np.ones(n),
        cpus=col(5), gpus=np.zeros(n), mem_gib=np.ones(n),
        users=users, qos_names=("avery",), states=("RUNNING",))


def rows_of(t: JobTable) -> set[tuple]:
    return {(int(j), t.users[u], float(s), float(e) if e == e else None, float(c))
            for j, u, s, e, c in zip(t.job_id, t.user, t.start, t.end, t.cpus, strict=True)}


def test_keys_tell_requeued_runs_apart_and_match_equal_records() -> None:
    t = table([(7, "alice", 100, 110, 200, 1), (7, "alice", 200, 210, NAN, 1),
               (8, "bob", 100, 110, NAN, 1)])
    keys = record_keys(t)
    assert len(set(keys.tolist())) == 3
    assert record_keys(t.take(np.array([0])))[0] == keys[0]
    assert int(keys[0]) >> 33 == 7


def test_merge_replaces_a_record_by_its_newer_version_and_keeps_the_rest() -> None:
    old = table([(1, "alice", 100, 110, NAN, 4), (2, "bob", 100, 120, 300, 2)])
    new = table([(1, "alice", 100, 110, 900, 4), (3, "carol", 500, 510, NAN, 8)],
                users=("alice", "carol"))
    merged = merge(old, new)
    assert rows_of(merged) == {(1, "alice", 110.0, 900.0, 4.0), (2, "bob", 120.0, 300.0, 2.0),
                               (3, "carol", 510.0, None, 8.0)}
    assert merged.users == ("alice", "bob", "carol")


def test_dedupe_keeps_the_last_answer() -> None:
    t = table([(1, "alice", 100, 110, NAN, 4), (1, "alice", 100, 110, 500, 4)])
    assert rows_of(dedupe_last(t)) == {(1, "alice", 110.0, 500.0, 4.0)}


def test_prune_drops_what_ended_before_the_history_but_keeps_open_jobs() -> None:
    t = table([(1, "alice", 0, 10, 50, 1), (2, "bob", 0, 10, NAN, 1),
               (3, "bob", 0, NAN, NAN, 1), (4, "alice", 0, 10, 150, 1)])
    assert sorted(prune(t, 100).job_id.tolist()) == [2, 3, 4]
    assert open_job_ids(t).tolist() == [2, 3]


def test_concat_unifies_names() -> None:
    a = table([(1, "bob", 0, 1, 2, 1)], users=("bob",))
    b = table([(2, "alice", 0, 1, 2, 1)], users=("alice",))
    c = concat([a, b])
    assert [c.users[u] for u in c.user] == ["bob", "alice"]


def test_day_chunks_cut_on_utc_midnights() -> None:
    d = 86400
    assert day_chunks(d + 100, 3 * d + 5) == ((d + 100, 2 * d), (2 * d, 3 * d), (3 * d, 3 * d + 5))
    assert day_chunks(d + 100, d + 700) == ((d + 100, d + 700),)


@pytest.mark.parametrize(("state", "now", "full", "damaged", "reason"), [
    (None, 10_000, False, "", "no store yet"),
    (StoreState("fp", 9_000, 0), 10_000, True, "", "--full"),
    (StoreState("fp", 9_000, 0), 10_000, False, "bad crc", "damaged (bad crc)"),
    (StoreState("other", 9_000, 0), 10_000, False, "", "configuration changed"),
    (StoreState("fp", 11_000, 0), 10_000, False, "", "clock is before"),
    (StoreState("fp", 1_000, 0), 10_000, False, "", "beyond the window"),
])
def test_plan_says_why_it_backfills(state, now, full, damaged, reason) -> None:
    plan = plan_sync(state, "fp", now, keep_from=2_000, overlap_seconds=600,
                     force_full=full, damaged=damaged)
    assert plan.full
    assert reason in plan.reason
    assert plan.start == 2_000


def test_plan_incremental_starts_an_overlap_before_the_last_cycle() -> None:
    plan = plan_sync(StoreState("fp", 9_000, 0), "fp", 10_000, keep_from=2_000,
                     overlap_seconds=600)
    assert not plan.full
    assert plan.spans == ((8_400, 10_000),)


def test_store_round_trip(tmp_path: Path, samples: Path) -> None:
    jobs = parse_sacct((samples / "sacct_avery.txt").read_bytes()).jobs
    other = table([(99, "alice", 5, 6, NAN, 3)])
    store = Store(cold={"": jobs}, hot={"": other.take(np.array([], dtype=np.int64)),
                                        "ai": other}, state=StoreState("fp", 123, 100))
    save_store(tmp_path, store)
    back = load_store(tmp_path)
    assert back is not None
    assert back.state == store.state
    assert set(back.clusters) == {"", "ai"}
    for name in store.clusters:
        t, u = store.jobs(name), back.jobs(name)
        assert [t.users[i] for i in t.user] == [u.users[i] for i in u.user]
        np.testing.assert_array_equal(t.job_id, u.job_id)
        for col in ("submit", "start", "end", "cpus", "gpus", "mem_gib"):
            np.testing.assert_array_equal(getattr(t, col), getattr(u, col))
    assert json.loads((tmp_path / STATE_FILE).read_text())["records"] == len(jobs) + 1
    # Only the hot part is rewritten when the cold one did not change.
    cold_mtime = (tmp_path / COLD_FILE).stat().st_mtime_ns
    state = json.loads((tmp_path / STATE_FILE).read_text())
    save_store(tmp_path, store, cold_changed=False, previous=state)
    assert (tmp_path / COLD_FILE).stat().st_mtime_ns == cold_mtime
    assert load_store(tmp_path) is not None


def test_no_store_is_none_and_damage_is_named(tmp_path: Path) -> None:
    assert load_store(tmp_path) is None
    save_store(tmp_path, Store(cold={"": table([(1, "bob", 0, 1, 2, 1)])},
                               hot={"": table([(2, "bob", 0, 1, NAN, 1)])},
                               state=StoreState("fp", 1, 1)))
    body = (tmp_path / COLD_FILE).read_bytes()
    (tmp_path / COLD_FILE).write_bytes(body[:-10])
    with pytest.raises(StoreCorrupt, match="checksum"):
        load_store(tmp_path)
    (tmp_path / COLD_FILE).unlink()
    with pytest.raises(StoreCorrupt, match="missing"):
        load_store(tmp_path)


def test_update_moves_what_ended_before_the_boundary_to_the_cold_part() -> None:
    cold = table([(1, "alice", 0, 10, 50, 1)])
    hot = table([(2, "bob", 0, 10, NAN, 1), (3, "bob", 0, 10, NAN, 2)])
    fresh = table([(2, "bob", 0, 10, 90, 1), (3, "bob", 0, 10, 150, 2)])
    up = update(cold, hot, fresh, boundary=100, keep_from=0)
    assert up.cold_changed
    assert sorted(up.cold.job_id.tolist()) == [1, 2]
    assert up.hot.job_id.tolist() == [3]
    quiet = update(up.cold, up.hot, table([(3, "bob", 0, 10, NAN, 2)]), boundary=100,
                   keep_from=0)
    assert not quiet.cold_changed  # nothing new for the cold part: its file stays
    # A fresh version of a cold record (a backfill, a wider overlap) replaces it.
    again = update(up.cold, up.hot, table([(1, "alice", 0, 10, 60, 1)]), boundary=100,
                   keep_from=0)
    assert again.cold_changed
    assert rows_of(again.cold) >= {(1, "alice", 10.0, 60.0, 1.0)}
    assert len(again.cold) == 2


def test_staged_backfill_answers_read_back_and_doubt_discards_them(tmp_path: Path) -> None:
    """A backfill's kept days read back as written; a kept file that no
    longer matches its checksum is asked again (None), and answers kept for
    another configuration are discarded, folder and all."""
    from collector.parse import UsageAnswer
    from collector.store.records import keys_of
    from collector.store.staging import QuerySpan, Staging

    jobs = table([(7, "alice", 100, 110, 200, 4), (8, "bob", 100, 110, NAN, 2)])
    day, other = QuerySpan("", 0, 86400), QuerySpan("", 86400, 172800)
    staging = Staging.open(tmp_path, "fp-1", settled=200_000)
    assert staging.jobs(day) is None
    assert not staging.files
    staging.keep_jobs(day, jobs)
    staging.keep_jobs(QuerySpan("", 172800, 259200), jobs)      # not settled: not kept
    answer = UsageAnswer(job_id=np.array([7, 8]), submit=np.array([100.0, 100.0]),
                         usage={c: np.array([1.0, 2.0]) for c in
                                ("total_cpu", "peak_rss_gib", "gpu_util", "gpu_mem_gib")})
    staging.keep_usage(day, answer, keys_of(np.array([7]), np.array([100.0])))

    again = Staging.open(tmp_path, "fp-1", settled=200_000)
    assert len(again.files) == 2
    back = again.jobs(day)
    assert back is not None
    assert rows_of(back) == rows_of(jobs)
    used = again.usage(day)
    assert used is not None
    assert used.job_id.tolist() == [7]
    assert used.usage["total_cpu"].tolist() == [1.0]
    assert again.jobs(other) is None
    assert again.usage(other) is None

    path = tmp_path / "backfill" / day.name("jobs", "arrow")
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    assert Staging.open(tmp_path, "fp-1", settled=200_000).jobs(day) is None

    assert not Staging.open(tmp_path, "fp-2", settled=200_000).files
    assert not (tmp_path / "backfill").exists()
