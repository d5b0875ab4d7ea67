"""Incremental collection equals a full query: the proofs on synthetic histories.

A model of slurmdbd (tests/slurmdb_sim.py) answers sacct as the clock moves;
a long run of 10-minute incremental cycles must give, at the same `now`, the
same snapshots as one full query — with jobs that start, end, get requeued,
stay running across many cycles, end while pending, and whose ends reach the
database late (within and beyond the overlap); with a missed day, a deleted
store and a damaged one. test_slurm_lab.py does the same against real Slurm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app.figures import daily_note
from collector.binning import make_window
from collector.collect import CollectError, collect
from collector.config import Config, load_config
from collector.jobtable import FLOAT_COLUMNS
from collector.parse import parse_sacct
from collector.sacct import build_sacct_args
from collector.snapshot import read_snapshot, snapshot_path, to_dict
from collector.status import read_status
from collector.store import (
    STATE_FILE,
    load_store,
    prune,
    record_keys,
    segments_fingerprint,
    store_folder,
)
from tests.slurmdb_sim import Record, SlurmDb, history

T0 = 1_790_000_000 - 1_790_000_000 % 86400  # a UTC midnight
DAY = 86400
CYCLE = 600


def write_config(folder: Path, *, window_days: int = 2, overlap_minutes: int = 60,
                 incremental: bool = True, clusters: str = "", keep_days: int = 0,
                 qos_per_query: int = 200) -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "librarian.toml").write_text(textwrap.dedent(f"""\
        [site]
        name = "Sim"
        data_dir = "data"
        {clusters}

        [collect]
        bin_seconds = 3600
        window_days = {window_days}
        overlap_minutes = {overlap_minutes}
        incremental = {str(incremental).lower()}
        keep_days = {keep_days}
        qos_per_query = {qos_per_query}

        [[qos]]
        name = "avery"
        limits = {{ cpus = 100, gpus = 8, memory_gb = 500 }}

        [[qos]]
        name = "avery-b"
        limits = {{ cpus = 16, gpus = 4, memory_gb = 64 }}
        """))
    return load_config(folder / "librarian.toml")


def run_cycles(config: Config, db: SlurmDb, start: int, end: int, step: int = CYCLE,
               skip: tuple[int, int] | None = None) -> int:
    """Incremental cycles every `step` s in [start, end]; none inside `skip`."""
    n = 0
    times = [*list(range(start, end, step)), end]
    for now in times:
        if skip and skip[0] <= now < skip[1]:
            continue
        db.clock = now
        collect(config, now, plots=False, runner=db)
        n += 1
    return n


def full_reference(tmp: Path, db: SlurmDb, now: int, **kw: object) -> Config:
    """The snapshots of one full query at `now`, made without the job store:
    the whole answer saved to a file and collected from it."""
    config = write_config(tmp / "full", **kw)  # type: ignore[arg-type]
    window = make_window(now, config.collect.bin_seconds, config.collect.n_bins)
    db.clock = now
    calls_before = len(db.calls)
    answer = tmp / "full" / "sacct-full.txt"
    if config.site.clusters:  # the file path has no clusters: use the store's full mode
        config = write_config(tmp / "full", incremental=False, **kw)  # type: ignore[arg-type]
        collect(config, now, plots=False, runner=db)
        return config
    answer.write_bytes(db.answer(build_sacct_args("sacct", [q.name for q in config.qos],
                                                  window.start, now), with_steps=True))
    del db.calls[calls_before:]
    collect(config, now, plots=False, sacct_file=answer)
    return config


def assert_same_snapshots(a: Config, b: Config) -> None:
    for panel in a.panels:
        x = read_snapshot(snapshot_path(a.site.data_dir, panel.qos, panel.file_cluster))
        y = read_snapshot(snapshot_path(b.site.data_dir, panel.qos, panel.file_cluster))
        assert x.now == y.now
        assert x.window_start == y.window_start
        assert x.users == y.users, panel
        for obs in x.series:
            np.testing.assert_allclose(x.series[obs], y.series[obs], atol=1e-3, err_msg=obs)
            np.testing.assert_allclose(x.current[obs], y.current[obs], atol=1e-3, err_msg=obs)
        assert x.jobs_counted == y.jobs_counted
        # The same per account and per partition (folds of the same sums).
        assert set(x.groups) == set(y.groups) == {"account", "partition"}
        for by, gx in x.groups.items():
            gy = y.groups[by]
            assert gx.names == gy.names, by
            for obs in gx.series:
                np.testing.assert_allclose(gx.series[obs], gy.series[obs], atol=1e-3,
                                           err_msg=f"{by} {obs}")
                np.testing.assert_allclose(gx.current[obs], gy.current[obs], atol=1e-3)
            assert (gx.history is None) == (gy.history is None)
            if gx.history is not None and gy.history is not None:
                np.testing.assert_allclose(gx.history.seconds.sum(axis=(0, 1)),
                                           gy.history.seconds.sum(axis=(0, 1)), atol=1e-3)
        # The queue's pressure and waits, from the exact intervals, agree too.
        assert set(x.pressure) == set(y.pressure)
        for k in x.pressure:
            for part in ("at_limit", "waiting_at_limit", "peak"):
                np.testing.assert_allclose(getattr(x.pressure[k], part),
                                           getattr(y.pressure[k], part), atol=1e-3,
                                           err_msg=f"pressure {k} {part}")

        def waits(s):
            w = s.waits
            cells = sorted(zip([w.users[u] for u in w.user.tolist()], w.day.tolist(),
                               w.jobs.tolist(), w.wait.round().tolist(),
                               w.at_limit.round().tolist(), strict=True))
            hist = sorted(zip([w.users[w.user[c]] for c in w.hist_cell.tolist()],
                              w.day[w.hist_cell].tolist(), w.hist_bin.tolist(),
                              w.hist_count.tolist(), strict=True))
            return cells, hist
        assert waits(x) == waits(y)

        def efficiency(s):   # what the ended jobs used: from the store's usage queries
            e = s.efficiency  # (by id or span) and from the full answer's step lines alike
            names = [e.users[u] for u in e.user.tolist()]
            return sorted(zip(names, e.day_starts[e.day].tolist(),
                              *(np.round(v, 3).tolist() for v in e.sums.values()), strict=True))
        assert efficiency(x) == efficiency(y)
        assert y.efficiency.sums["cpu_used"].sum() > 0 or not y.efficiency.sums["jobs"].sum()

        # The daily history: each cold segment's kept days plus the hot records'
        # (collector/store/days.py) equal the days of one full answer.
        def days(s):
            h = s.history
            assert h is not None
            keep = [i for i, _ in enumerate(h.users)
                    if h.seconds[:, i].any() or h.started[i].any()]
            return h.first, [h.users[i] for i in keep], h.seconds[:, keep], h.started[keep]
        (fx, ux, sx, jx), (fy, uy, sy, jy) = days(x), days(y)
        assert (fx, ux) == (fy, uy)
        np.testing.assert_allclose(sx, sy, atol=1e-3 * 3600, err_msg="history")
        np.testing.assert_array_equal(jx, jy)
        assert sx.sum() > 0 or not x.series["NCPUS"].any()   # the window's usage is in its days


def store_keys(config: Config, keep_from: float | None = None) -> dict[str, set[int]]:
    """The store's record keys per cluster (those that ended before
    `keep_from` left out: the cold file is pruned only when rewritten)."""
    store = load_store(store_folder(config.site.data_dir))
    assert store is not None
    tables = {c: store.jobs(c) for c in store.clusters}
    if keep_from is not None:
        tables = {c: prune(t, keep_from) for c, t in tables.items()}
    return {c: set(record_keys(t).tolist()) for c, t in tables.items()}


@pytest.mark.parametrize(("seed", "step"), [(1, CYCLE), (2, 3 * CYCLE), (3, 5 * CYCLE)])
def test_many_incremental_cycles_equal_one_full_query(tmp_path: Path, seed: int,
                                                      step: int) -> None:
    records = history(seed, T0, T0 + 4 * DAY, 400, max_lag=1800)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=2)
    end = T0 + 4 * DAY + 7 * 3600 + 17
    cycles = run_cycles(inc, db, T0 + DAY, end, step=step)
    assert cycles > 90
    full = full_reference(tmp_path, db, end)
    assert_same_snapshots(inc, full)
    # The store holds every record the full answer has that ran in the window.
    keep_from = read_snapshot(snapshot_path(full.site.data_dir, "avery")).window_start
    full_answer = parse_sacct((tmp_path / "full" / "sacct-full.txt").read_bytes()).jobs
    assert store_keys(inc, keep_from)[""] == set(record_keys(prune(full_answer, keep_from))
                                                 .tolist())
    # The history really had what the test claims to cover.
    assert any(r.state == "REQUEUED" for r in records)
    assert any(r.end is None and r.start is not None for r in records)
    assert any(r.start is not None and r.start < end - DAY and r.end is not None and r.end > end
               for r in records)  # running across more than a day of cycles
    assert any(r.lands > 0 for r in records)
    assert any(r.held for r in records)
    queued = read_snapshot(snapshot_path(full.site.data_dir, "avery")).series["QUEUED_NCPUS"]
    assert queued.any()   # the proof covers queued demand: there was some
    # Only the first cycle was a backfill; the rest asked for little.
    status = read_status(inc.site.data_dir)["sacct"]
    modes = [c["mode"] for c in status["cycles"]]
    assert modes[0] == "full"
    assert set(modes[1:]) == {"incremental"}
    # Cold records are written rarely: the daily move, a late end landing before
    # the boundary, a requeued job's first run asked for again by id.
    rewrites = [c["at"] for c in status["cycles"] if c["cold_rewritten"]]
    days = (end - (T0 + DAY)) / DAY
    assert len(rewrites) <= 3 * days + 2, rewrites


def test_the_kept_pressure_equals_a_full_query_over_a_longer_window(tmp_path: Path) -> None:
    """A 5-day window, hourly cycles over 6 days: the span before the frozen
    boundary is kept between cycles (its settled waits summed per day) and
    made anew daily; every snapshot's pressure and waits equal one full query."""
    from collector.store.frozen import FROZEN_FILE, load_frozen
    from collector.store.sums import load_cold_sums

    records = history(4, T0, T0 + 6 * DAY, 600, max_lag=900)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=5)
    end = T0 + 6 * DAY + 5 * 3600 + 11
    run_cycles(inc, db, T0 + DAY, end, step=3600)
    full = full_reference(tmp_path, db, end, window_days=5)
    assert_same_snapshots(inc, full)
    snap = read_snapshot(snapshot_path(inc.site.data_dir, "avery-b"))
    assert snap.pressure["NCPUS"].at_limit.sum() > 0     # there was pressure to keep
    folder = store_folder(inc.site.data_dir)
    state = json.loads((folder / STATE_FILE).read_text())
    sums = load_cold_sums(folder, segments_fingerprint(state), 3600)
    assert sums is not None
    assert (folder / FROZEN_FILE).exists()
    kept = load_frozen(folder, sums.fingerprint, 3600).entries
    assert kept, "the span before the boundary was not kept"
    assert any(f.span.settled is not None and f.span.settled.jobs.sum() > 0
               for f in kept.values())   # and some waits were summed, not carried per job


def test_incremental_asks_far_fewer_rows_than_full_requeries(tmp_path: Path) -> None:
    records = history(4, T0, T0 + 3 * DAY, 600)
    inc_db, full_db = SlurmDb(records), SlurmDb(records)
    run_cycles(write_config(tmp_path / "inc"), inc_db, T0 + 2 * DAY, T0 + 3 * DAY)
    run_cycles(write_config(tmp_path / "full", incremental=False), full_db,
               T0 + 2 * DAY, T0 + 3 * DAY)
    # The first (backfill) cycle is the same; the steady state is what differs.
    assert inc_db.rows_printed * 3 < full_db.rows_printed, (inc_db.rows_printed,
                                                             full_db.rows_printed)


def test_an_end_landing_later_than_the_overlap_is_caught_by_asking_for_open_jobs(
        tmp_path: Path) -> None:
    # Job 7 ends at T0+1h but slurmdbd learns it 3 h later; the overlap is 30 min.
    records = [Record(7, T0, "alice", "avery", start=T0 + 60, end=T0 + 3600, cpus=8,
                      lands=3 * 3600),
               Record(8, T0, "bob", "avery", start=T0 + 60, end=T0 + 1800, cpus=2)]
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", overlap_minutes=30)
    run_cycles(inc, db, T0 + 600, T0 + 6 * 3600)
    cycles = read_status(inc.site.data_dir)["sacct"]["cycles"]
    assert sum(c["requeried_open"] for c in cycles) >= 1
    assert any("--jobs=7" in a for call in db.calls if "--allocations" in call for a in call)
    full = full_reference(tmp_path, db, T0 + 6 * 3600, overlap_minutes=30)
    assert_same_snapshots(inc, full)
    snap = read_snapshot(snapshot_path(inc.site.data_dir, "avery"))
    alice = snap.users.index("alice")
    assert snap.series["NCPUS"][alice].sum() * 3600 == pytest.approx(8 * (3600 - 60), abs=1)


def test_a_missed_day_is_filled_in(tmp_path: Path) -> None:
    records = history(5, T0, T0 + 4 * DAY, 300)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=3)
    end = T0 + 4 * DAY
    run_cycles(inc, db, T0 + DAY, end, step=1800, skip=(T0 + 2 * DAY, T0 + 3 * DAY + 3600))
    cycles = read_status(inc.site.data_dir)["sacct"]["cycles"]
    gap_cycle = next(c for c in cycles if c["at"] >= T0 + 3 * DAY + 3600)
    assert gap_cycle["mode"] == "incremental"
    assert gap_cycle["queries"] >= 2
    assert_same_snapshots(inc, full_reference(tmp_path, db, end, window_days=3))


def test_a_gap_longer_than_the_window_backfills(tmp_path: Path) -> None:
    records = history(6, T0, T0 + 6 * DAY, 300)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=2)
    run_cycles(inc, db, T0 + DAY, T0 + DAY + 3600)
    db.clock = T0 + 5 * DAY
    report = collect(inc, T0 + 5 * DAY, plots=False, runner=db)
    assert report.sync is not None
    assert report.sync.full
    assert "beyond the window" in report.sync.reason
    assert_same_snapshots(inc, full_reference(tmp_path, db, T0 + 5 * DAY))


def test_a_backfill_leaves_only_the_files_its_state_lists(tmp_path: Path) -> None:
    """Days of cycles write several cold segments; --full replaces them all."""
    import json

    records = history(7, T0, T0 + 4 * DAY, 200)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=4)
    run_cycles(inc, db, T0 + DAY, T0 + 3 * DAY, step=6 * 3600)
    folder = store_folder(inc.site.data_dir)
    assert len(list(folder.glob("cold-*.arrow"))) >= 2  # the daily moves wrote segments
    db.clock = T0 + 3 * DAY + 600
    report = collect(inc, T0 + 3 * DAY + 600, plots=False, runner=db, full=True)
    assert report.sync is not None
    assert report.sync.full
    listed = set(json.loads((folder / STATE_FILE).read_text())["files"])
    on_disk = {p.name for p in folder.glob("*.arrow")}
    assert on_disk == listed, f"unlisted files left behind: {sorted(on_disk - listed)}"
    assert_same_snapshots(inc, full_reference(tmp_path, db, T0 + 3 * DAY + 600, window_days=4))


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip", "garbage_state",
                                    "missing_state"])
def test_a_deleted_or_damaged_store_is_rebuilt(tmp_path: Path, damage: str) -> None:
    records = history(7, T0, T0 + 3 * DAY, 300)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc")
    run_cycles(inc, db, T0 + DAY, T0 + 2 * DAY, step=3600)
    folder = store_folder(inc.site.data_dir)
    # The biggest cold segment: nearly all of the records.
    jobs = max(folder.glob("cold-*.arrow"), key=lambda p: p.stat().st_size)
    state = folder / STATE_FILE
    if damage == "delete":
        shutil.rmtree(folder)
    elif damage == "truncate":
        jobs.write_bytes(jobs.read_bytes()[: jobs.stat().st_size // 2])
    elif damage == "flip":
        body = bytearray(jobs.read_bytes())
        body[len(body) // 2] ^= 0xFF
        jobs.write_bytes(bytes(body))
    elif damage == "garbage_state":
        state.write_text("{not json")
    else:
        state.unlink()
    now = T0 + 2 * DAY + 1800
    db.clock = now
    report = collect(inc, now, plots=False, runner=db)
    assert report.sync is not None
    assert report.sync.full
    if damage == "delete":
        assert report.sync.reason.startswith("no store")
    else:
        assert report.sync.reason.startswith("the store was damaged")
        aside = Path(report.sync.set_aside)
        assert aside.is_dir()
        assert aside.name.startswith("store.damaged-")
    assert_same_snapshots(inc, full_reference(tmp_path, db, now))


def test_a_failing_query_writes_nothing(tmp_path: Path) -> None:
    records = history(8, T0, T0 + 2 * DAY, 200)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc")
    run_cycles(inc, db, T0 + DAY, T0 + DAY + 3600)
    data = inc.site.data_dir
    before = {p: p.read_bytes() for p in [*data.glob("data_*.json"),
                                         *store_folder(data).iterdir()]}
    db.fail, db.clock = True, T0 + DAY + 7200
    with pytest.raises(CollectError, match="Connection refused"):
        collect(inc, T0 + DAY + 7200, plots=False, runner=db)
    assert {p: p.read_bytes() for p in before} == before
    # The next good cycle catches up as if nothing had happened.
    db.fail, db.clock = False, T0 + DAY + 9000
    collect(inc, T0 + DAY + 9000, plots=False, runner=db)
    assert_same_snapshots(inc, full_reference(tmp_path, db, T0 + DAY + 9000))


def test_a_changed_configuration_backfills(tmp_path: Path) -> None:
    records = history(9, T0, T0 + 3 * DAY, 200)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc")
    run_cycles(inc, db, T0 + DAY, T0 + DAY + 3600)
    other = write_config(tmp_path / "inc", clusters='clusters = ["hpg"]')
    db.clock = T0 + DAY + 7200
    report = collect(other, T0 + DAY + 7200, plots=False, runner=db)
    assert report.sync is not None
    assert report.sync.full
    assert "configuration changed (clusters or QoS)" in report.sync.reason


def test_store_is_pruned_to_the_window_but_keeps_open_jobs(tmp_path: Path) -> None:
    records = [Record(1, T0, "alice", "avery", start=T0, end=T0 + 3600),          # old, ended
               Record(2, T0, "bob", "avery", start=T0 + 60, end=None),           # runs on
               Record(3, T0, "carol", "avery", start=None, end=None, state="PENDING")]
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=1)
    run_cycles(inc, db, T0 + 7200, T0 + 7200)
    assert {int(k) >> 33 for k in store_keys(inc)[""]} == {1, 2, 3}
    run_cycles(inc, db, T0 + 3 * DAY, T0 + 3 * DAY)   # a backfill two days on
    assert {int(k) >> 33 for k in store_keys(inc)[""]} == {2, 3}
    run_cycles(inc, db, T0 + 3 * DAY + 600, T0 + 3 * DAY + 600)  # an incremental prune
    assert {int(k) >> 33 for k in store_keys(inc)[""]} == {2, 3}


def test_several_clusters_one_query_each_with_the_cluster_in_tab_and_file(
        tmp_path: Path) -> None:
    records = history(10, T0, T0 + 2 * DAY, 300, clusters=("hpg", "hpg-ai"))
    db = SlurmDb(records)
    clusters = 'clusters = ["hpg", "hpg-ai"]'
    inc = write_config(tmp_path / "inc", clusters=clusters)
    run_cycles(inc, db, T0 + DAY, T0 + 2 * DAY, step=1800)
    assert [p.key for p in inc.panels] == ["avery@hpg", "avery-b@hpg", "avery@hpg-ai",
                                           "avery-b@hpg-ai"]
    assert next(p.label for p in inc.panels) == "avery (hpg)"
    assert {a for call in db.calls for a in call if a.startswith("--clusters")} == \
        {"--clusters=hpg", "--clusters=hpg-ai"}
    assert all("--qos=avery,avery-b" in call for call in db.calls if "--allocations" in call)
    assert_same_snapshots(inc, full_reference(tmp_path, db, T0 + 2 * DAY, clusters=clusters))
    doc = json.loads((inc.site.data_dir / "data_hpg-ai_avery.json").read_text())
    assert doc["metadata"]["cluster"] == "hpg-ai"
    ai = {r.user for r in records if r.cluster == "hpg-ai" and r.qos == "avery"
          and r.start is not None and r.start < T0 + 2 * DAY
          and (r.end is None or r.end > T0)}
    assert set(doc["users"]) <= ai


def test_a_cold_record_asked_for_again_is_replaced_not_counted_twice(tmp_path: Path) -> None:
    # Job 50 ran, was requeued (its first run goes cold after a day), ran again,
    # and its second end reached slurmdbd 5 hours late: the by-id question then
    # returns both runs, and the first replaces its cold copy.
    records = [Record(50, T0, "alice", "avery", start=T0 + 60, end=T0 + 3600, cpus=4,
                      state="REQUEUED"),
               Record(50, T0 + 3600, "alice", "avery", start=T0 + 2 * DAY,
                      end=T0 + 2 * DAY + 3600, cpus=4, lands=5 * 3600),
               Record(51, T0, "bob", "avery", start=T0 + 60, end=T0 + 7200, cpus=2)]
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=3)
    end = T0 + 2 * DAY + 8 * 3600
    run_cycles(inc, db, T0 + 600, end, step=3600)
    assert any("--jobs=50" in a for call in db.calls if "--allocations" in call for a in call)
    cycles = read_status(inc.site.data_dir)["sacct"]["cycles"]
    asked = [c for c in cycles if c["requeried_open"]]
    assert asked
    assert all(c["cold_rewritten"] for c in asked)  # its segment was rewritten
    assert_same_snapshots(inc, full_reference(tmp_path, db, end, window_days=3))
    snap = read_snapshot(snapshot_path(inc.site.data_dir, "avery"))
    alice = snap.users.index("alice")
    lengths = make_window(end, 3600, snap.n_bins).bin_lengths()
    cpu_seconds = float((snap.series["NCPUS"][alice] * lengths).sum())
    assert cpu_seconds == pytest.approx(4 * (3600 - 60) + 4 * 3600, abs=1)


@pytest.mark.parametrize("by_id_up_to", [5000, 10])
def test_each_ended_jobs_usage_is_read_once_from_its_steps_and_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_id_up_to: int) -> None:
    """Every ended record in the store carries what its steps recorded (the
    simulator's `Record.used`), asked once per record, whatever cycle it ended
    in and however late its end landed; later versions of a record (sacct's
    allocation lines carry no usage) keep it. With a low `by_id_up_to`, the
    backfill asks the steps of its time spans instead of ids."""
    import collector.collect as collect_module

    monkeypatch.setattr(collect_module, "USAGE_IDS_BY_ID", by_id_up_to)
    records = history(5, T0, T0 + 3 * DAY, 300, max_lag=1800)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=2)
    end = T0 + 3 * DAY + 5 * 3600
    run_cycles(inc, db, T0 + DAY, end, step=1800)
    store = load_store(store_folder(inc.site.data_dir))
    assert store is not None
    jobs = store.jobs("")
    ended = ~np.isnan(jobs.end) & ~np.isnan(jobs.start)
    assert ended.sum() > 100
    assert not np.isnan(jobs.usage_read[ended]).any()
    assert np.isnan(jobs.usage_read[~ended]).all()      # running and pending: not asked
    by_key = {(r.job_id, r.submit): r for r in records}
    for i in np.flatnonzero(ended):
        r = by_key[(int(jobs.job_id[i]), int(jobs.submit[i]))]
        cpu, rss = r.used(int(jobs.end[i] - jobs.start[i]))
        assert jobs.total_cpu[i] == cpu
        assert jobs.peak_rss_gib[i] == pytest.approx(rss / 2**30)
        assert np.isnan(jobs.gpu_util[i])                  # not recorded by this cluster
    # Once per record: a JobIDRaw is asked as often as it has records that ended.
    asked: dict[int, int] = {}
    usage_calls = [c for c in db.calls if c[0].endswith("sacct") and "--allocations" not in c]
    spans = [c for c in usage_calls if not any(a.startswith("--jobs=") for a in c)]
    assert bool(spans) == (by_id_up_to < 300)      # only a backfill with many jobs asks spans
    for call in usage_calls:
        if call not in spans:
            ids = next(a for a in call if a.startswith("--jobs="))[len("--jobs="):]
            for j in ids.split(","):
                asked[int(j)] = asked.get(int(j), 0) + 1
    ended_records: dict[int, int] = {}
    for r in records:
        if r.start is not None and r.end is not None and r.end + r.lands <= end:
            ended_records[r.job_id] = ended_records.get(r.job_id, 0) + 1
    assert asked
    # The status file counts the usage queries' lines apart from the time queries'.
    cycles = read_status(inc.site.data_dir)["sacct"]["cycles"]
    assert sum(c["usage_rows"] for c in cycles) >= ended.sum()
    assert all(asked[j] <= ended_records.get(j, 0) for j in asked), \
        {j: (n, ended_records.get(j)) for j, n in asked.items() if n > ended_records.get(j, 0)}


def history_reference(tmp: Path, db: SlurmDb, now: int, **kw: object) -> Config:
    """The snapshots of one full query of the whole history at `now`: the
    answer saved to a file (with the steps) and collected from it."""
    config = write_config(tmp / "reference", **kw)  # type: ignore[arg-type]
    c = config.collect
    window = make_window(now, c.bin_seconds, c.n_bins)
    db.clock = now
    calls = len(db.calls)
    answer = tmp / "reference" / "sacct-history.txt"
    answer.write_bytes(db.answer(build_sacct_args(
        "sacct", [q.name for q in config.qos],
        window.start - (c.history_days - c.window_days) * DAY, now), with_steps=True))
    del db.calls[calls:]
    collect(config, now, plots=False, sacct_file=answer)
    return config


def test_a_long_history_fills_in_gently_over_the_cycles_after_the_window(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """history_days beyond the window: the first run reads the window only
    (its days at once: the page needs them); each later cycle reads
    `history_days_per_cycle` older days, newest first and
    `backfill_pause_seconds` apart, until the history is complete; then the
    snapshot's daily history equals one query of the whole history, and
    cycles ask only for what changed."""
    import collector.collect

    records = history(9, T0 - 8 * DAY, T0 + DAY, 400, max_lag=1800)
    db = SlurmDb(records)
    folder = tmp_path / "inc"
    write_config(folder)                                              # a 2-day window
    text = (folder / "librarian.toml").read_text().replace(
        "keep_days = 0", "history_days = 6\nhistory_days_per_cycle = 2")
    (folder / "librarian.toml").write_text(text)                      # the name for it
    config = load_config(folder / "librarian.toml")
    assert config.collect.history_days == 6
    slept: list[float] = []
    monkeypatch.setattr(collector.collect.time, "sleep", slept.append)
    now = T0 + DAY + 1800
    db.clock = now
    first = collect(config, now, plots=False, runner=db).sync
    assert first is not None
    assert first.full
    window_start = now - now % 3600 + 3600 - 2 * DAY
    assert min(s for s, _ in first.spans) == window_start            # the window only
    assert slept == []
    step = read_status(config.site.data_dir)["steps"]["backfill"]
    assert step["detail"] == f"{len(first.spans)} of {len(first.spans)} day queries"
    snap = read_snapshot(snapshot_path(config.site.data_dir, "avery"))
    h = snap.history
    assert h is not None
    assert h.n_days == 6
    assert h.complete_from == window_start                            # and the page says so
    assert "still being read from Slurm" in daily_note(snap)
    older_days = []
    for k in range(1, 5):
        slept.clear()
        db.clock = now + k * CYCLE
        sync = collect(config, now + k * CYCLE, plots=False, runner=db).sync
        assert sync is not None
        assert not sync.full
        older = sync.spans[len(sync.spans) - sync.older:] if sync.older else ()
        older_days.append(older)
        assert all(e <= window_start for _, e in older)
        assert sum(e - s for s, e in older) <= 2 * DAY
        assert slept == [1.0] * len(older)                            # each after a query
        assert [s for s, _ in older] == sorted((s for s, _ in older), reverse=True)
    assert [bool(o) for o in older_days] == [True, True, False, False]   # 4 days, 2 a cycle
    assert "complete" in read_status(config.site.data_dir)["steps"]["history"]["detail"]
    # The window and the daily history (assert_same_snapshots compares both).
    assert_same_snapshots(config, history_reference(tmp_path, db, now + 4 * CYCLE, keep_days=6))
    snap = read_snapshot(snapshot_path(config.site.data_dir, "avery"))
    h = snap.history
    assert h is not None
    assert h.seconds[:, :, :3].sum() > 0                               # days before the window
    assert h.complete_from == 0
    assert "still being read" not in daily_note(snap)


def test_a_longer_history_is_read_in_without_a_backfill(tmp_path: Path) -> None:
    records = history(10, T0 - 6 * DAY, T0 + 2 * DAY, 300)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc")
    run_cycles(inc, db, T0 + DAY, T0 + DAY + 3600)
    wider = write_config(tmp_path / "inc", keep_days=5)
    db.clock = T0 + DAY + 7200
    report = collect(wider, T0 + DAY + 7200, plots=False, runner=db)
    assert report.sync is not None
    assert not report.sync.full
    assert report.sync.older >= 3
    assert_same_snapshots(wider, history_reference(tmp_path, db, T0 + DAY + 7200, keep_days=5))
    # A shorter one again is pruned, still without a backfill.
    db.clock = T0 + DAY + 7800
    report = collect(inc, T0 + DAY + 7800, plots=False, runner=db)
    assert report.sync is not None
    assert not report.sync.full
    assert not report.sync.older
    assert_same_snapshots(inc, full_reference(tmp_path, db, T0 + DAY + 7800))


def _cut_after(db: SlurmDb, n: int):
    """db, but every sacct call after the first `n` fails (slurmdbd went away)."""
    calls = 0

    def run(args: list[str], **kw: object):
        nonlocal calls
        if args[0].endswith("sacct"):
            calls += 1
            if calls > n:
                return subprocess.CompletedProcess(args, 1, b"",
                                                   b"sacct: error: slurmdbd: Connection refused\n")
        return db(args, **kw)
    return run


def _records(config: Config) -> dict[str, dict[str, list]]:
    """Every stored record, column by column in record-key order (the time
    the steps were read left out: a resumed backfill read some earlier)."""
    store = load_store(store_folder(config.site.data_dir))
    assert store is not None
    out = {}
    for cluster in store.clusters:
        t = store.jobs(cluster)
        order = np.argsort(record_keys(t), kind="stable")
        out[cluster] = {c: np.nan_to_num(getattr(t, c)[order], nan=-1.0).tolist()
                        for c in ("job_id", *FLOAT_COLUMNS) if c != "usage_read"}
        out[cluster]["user"] = [t.users[u] for u in t.user[order].tolist()]
        out[cluster]["state"] = [t.states[s] for s in t.state[order].tolist()]
    return out


@pytest.mark.parametrize(("usage_by", "cut"), [("id", 4), ("span", 10)])
def test_an_interrupted_backfill_resumes_and_equals_one_backfill(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usage_by: str, cut: int) -> None:
    """A backfill cut short (slurmdbd failing after a few day queries; by span,
    while its steps are asked) keeps the days it read; the next run, hours later, asks only for the rest (and,
    by id, the jobs that were open when their day was kept) and its store and
    snapshots equal one uninterrupted backfill at that time: jobs that ended
    in between, ends that land late, and the steps' usage included."""
    import collector.collect

    monkeypatch.setattr(collector.collect.time, "sleep", lambda _: None)
    if usage_by == "span":   # a year's backfill has too many jobs to ask their steps by id
        monkeypatch.setattr(collector.collect, "USAGE_IDS_BY_ID", 5)
    records = history(11, T0 - 7 * DAY, T0 + DAY, 500, max_lag=4 * DAY)   # slurmdbd was down
    db = SlurmDb(records)
    resumed = write_config(tmp_path / "resumed", window_days=6)
    now1 = T0 + DAY + 1800
    db.clock = now1
    with pytest.raises(CollectError, match="Connection refused"):
        collect(resumed, now1, plots=False, runner=_cut_after(db, cut))
    staging = store_folder(resumed.site.data_dir) / "backfill"
    staged = json.loads((staging / "staged.json").read_text())["files"]
    days = [tuple(int(x) for x in n.split(".")[0].split("-")[2:]) for n in staged
            if n.startswith("jobs-")]
    assert len(days) == min(cut, 5)         # the last two days reach into the overlap: not kept
    assert len([n for n in staged if n.startswith("usage-")]) == (3 if usage_by == "span" else 0)
    assert not (store_folder(resumed.site.data_dir) / STATE_FILE).exists()
    assert not list(resumed.site.data_dir.glob("data_*.json"))
    # Some of the kept days' jobs were still open: their records will change.
    kept_open = {r.job_id for r in records if r.submit < T0 - 3 * DAY
                 and (r.end is None or r.end + r.lands > now1)}
    assert kept_open

    now2 = now1 + 5 * 3600
    db.clock = now2
    before = len(db.calls)
    report = collect(resumed, now2, plots=False, runner=db)
    assert report.sync is not None
    assert report.sync.full
    spans = report.sync.spans
    queries = [c for c in db.calls[before:] if c[0].endswith("sacct")]
    uncut = len(db.calls)
    one = write_config(tmp_path / "one", window_days=6)
    collect(one, now2, plots=False, runner=db)
    assert len(queries) < len([c for c in db.calls[uncut:] if c[0].endswith("sacct")])
    # The history's first (partial) day now starts 5 hours later: asked again.
    kept = len(set(days) & set(spans))
    assert kept == len(days) - 1
    assert read_status(resumed.site.data_dir)["steps"]["backfill"]["detail"] == \
        f"{len(spans)} of {len(spans)} day queries ({kept} kept from an interrupted backfill)"
    assert not staging.exists()                        # done: nothing left to resume
    assert _records(resumed) == _records(one)
    assert_same_snapshots(resumed, one)
    for panel in one.panels:
        a = read_snapshot(snapshot_path(resumed.site.data_dir, panel.qos)).history
        b = read_snapshot(snapshot_path(one.site.data_dir, panel.qos)).history
        assert a is not None
        assert b is not None
        assert a.users == b.users
        np.testing.assert_allclose(a.seconds, b.seconds, atol=1e-3)


def test_the_cold_sums_are_the_windows_kept_sparse_and_a_longer_window_remakes_them(
        tmp_path: Path) -> None:
    """The hourly sums of the cold records start at the window, not a year
    back (the year is in days), and keep only their nonzero cells; a window
    made longer starts before them, so they are made anew from the segments
    (no query), and the snapshots equal one query of the whole history."""
    from collector.store.sums import load_cold_sums

    records = history(11, T0 - 5 * DAY, T0 + 2 * DAY, 400)
    db = SlurmDb(records)
    inc = write_config(tmp_path / "inc", window_days=2, keep_days=6)
    now = T0 + DAY + 4 * 3600
    run_cycles(inc, db, T0 + DAY, now, step=3600)
    folder = store_folder(inc.site.data_dir)
    sums = load_cold_sums(folder, segments_fingerprint(json.loads((folder / STATE_FILE)
                                                                  .read_text())), 3600)
    assert sums is not None
    assert sums.sums
    window_start = read_snapshot(snapshot_path(inc.site.data_dir, "avery")).window_start
    assert window_start - 3600 * 4 <= sums.start <= window_start   # the window's, not 6 days
    for part in sums.sums.values():
        dense = part.dense()
        assert dense.shape[2] == part.n_bins
        assert np.count_nonzero(dense) == len(part.index) < dense.size
    longer = write_config(tmp_path / "inc", window_days=4, keep_days=6)
    db.clock = now + 600
    report = collect(longer, now + 600, plots=False, runner=db)
    assert report.sync is not None
    assert not report.sync.full
    assert report.sync.cold_rewritten
    assert_same_snapshots(longer, history_reference(tmp_path, db, now + 600, window_days=4,
                                                    keep_days=6))


def test_qos_asked_in_runs_give_the_same_store_snapshots_and_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`collect.qos_per_query` = 1: every sacct and squeue call names one QoS
    (the backfill's days, its steps asked per span, the cycles, the open jobs
    asked by id, the queue), and the store, the snapshots and the queue
    equal those of one call naming both."""
    import collector.collect

    monkeypatch.setattr(collector.collect, "USAGE_IDS_BY_ID", 5)   # steps per span too
    records = history(7, T0, T0 + 3 * DAY, 300, max_lag=2 * 3600)
    db = SlurmDb(records)
    one = write_config(tmp_path / "one")
    runs = write_config(tmp_path / "runs", qos_per_query=1)
    start, end = T0 + DAY, T0 + 2 * DAY + 5 * 3600 + 17
    asked: dict[str, list[list[str]]] = {}
    for config in (one, runs):
        before = len(db.calls)
        run_cycles(config, db, start, end, step=3 * CYCLE)
        asked[config.site.data_dir.parent.name] = [
            [a.split("=", 1)[1] for a in c if a.startswith("--qos=")] for c in db.calls[before:]]
    assert _records(one) == _records(runs)
    assert_same_snapshots(one, runs)
    for q in ("avery", "avery-b"):
        a = to_dict(read_snapshot(snapshot_path(one.site.data_dir, q)))
        b = to_dict(read_snapshot(snapshot_path(runs.site.data_dir, q)))
        assert a["queue"] == b["queue"]
        assert a["queue"]["rows"] or q == "avery-b"
    # Each call of the one named both; in runs, each named one, twice as many calls.
    assert {tuple(q) for q in asked["one"] if q} == {("avery,avery-b",)}
    assert {tuple(q) for q in asked["runs"] if q} == {("avery",), ("avery-b",)}
    assert len([q for q in asked["runs"] if q]) == 2 * len([q for q in asked["one"] if q])


def test_snapshots_made_on_forked_processes_are_those_made_in_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many QoS (here: POOL_FROM lowered to 0) make their files on
    `collect.processes` forked processes: over two days of cycles (the
    frozen caches kept, and made anew when the boundary moves), every file
    written, the index and the overview are byte for byte those of one process."""
    import os

    import collector.collect

    pids = tmp_path / "pids"
    write_panel = collector.collect._write_panel

    def spy(*args: object, **kw: object) -> object:
        with pids.open("a") as fh:
            fh.write(f"{os.getpid()}\n")
        return write_panel(*args, **kw)  # type: ignore[arg-type]

    records = history(11, T0, T0 + 3 * DAY, 300, max_lag=2 * 3600)
    one = write_config(tmp_path / "one")
    many = write_config(tmp_path / "many")
    (tmp_path / "one" / "librarian.toml").write_text(
        (tmp_path / "one" / "librarian.toml").read_text().replace(
            "[collect]\n", "[collect]\nprocesses = 1\n"))
    one = load_config(tmp_path / "one" / "librarian.toml")
    assert (one.collect.processes, many.collect.processes) == (1, 2)
    monkeypatch.setattr(collector.collect, "POOL_FROM", 0)
    monkeypatch.setattr(collector.collect, "_CHUNK", 1)       # each QoS in a call of its own
    monkeypatch.setattr(collector.collect, "_write_panel", spy)
    start, end = T0 + DAY - 2 * CYCLE, T0 + 2 * DAY + 3 * 3600 + 17
    for config in (one, many):
        pids.write_text("")
        run_cycles(config, SlurmDb(records), start, end, step=6 * CYCLE)
        made_by = set(pids.read_text().split())
        if config is one:
            assert made_by == {str(os.getpid())}
        else:
            assert str(os.getpid()) not in made_by
            assert len(made_by) >= 2, made_by
    for name in sorted(p.name for p in one.site.data_dir.iterdir() if p.is_file()):
        if name in ("status.json", "checked.json"):
            continue   # times of the cycle's steps; the index below without its mtimes
        assert (one.site.data_dir / name).read_bytes() == \
            (many.site.data_dir / name).read_bytes(), name
    index = [{n: {k: v for k, v in e.items() if k != "mtime_ns"} for n, e in
              json.loads((c.site.data_dir / "checked.json").read_text())["files"].items()}
             for c in (one, many)]
    assert index[0] == index[1]
    assert len(index[0]) == 2


def test_cycles_of_one_qos_leave_the_others_cold_efficiency_whole(tmp_path: Path) -> None:
    """`collect --qos avery` on the cycles where the frozen boundary moves
    (the efficiency cache is made anew there) and then a cycle of every QoS:
    avery-b's snapshot is the one every cycle of every QoS makes (its cold
    efficiency sums are made when the cache lacks them, not left out)."""
    records = history(5, T0, T0 + 3 * DAY, 300, max_lag=2 * 3600)
    every = write_config(tmp_path / "every")
    one = write_config(tmp_path / "one")
    start, end = T0 + DAY - 2 * CYCLE, T0 + 2 * DAY + 2 * 3600 + 17
    times = [*range(start, end, 6 * CYCLE), end]
    for config in (every, one):
        db = SlurmDb(records)
        for now in times:
            db.clock = now
            collect(config, now, plots=False, runner=db,
                    qos_names=["avery"] if config is one and now != end else None)
    x = read_snapshot(snapshot_path(every.site.data_dir, "avery-b"))
    y = read_snapshot(snapshot_path(one.site.data_dir, "avery-b"))
    assert x.efficiency.sums["jobs"].sum() > 0
    for name, values in x.efficiency.sums.items():
        np.testing.assert_allclose(y.efficiency.sums[name].sum(), values.sum(), err_msg=name)
    assert_same_snapshots(every, one)
