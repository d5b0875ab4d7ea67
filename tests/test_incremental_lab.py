"""Incremental collection, limits and clusters against the real Slurm lab.

The real `librarian collect` runs cycle after cycle while real jobs start,
end, fail and get requeued (scontrol requeue: slurmdbd then holds two records
of one JobIDRaw with different Submit times); the store is deleted, damaged
and left a day behind between cycles; and at the end the incremental
snapshots must equal those of a full re-query at the same `now`. Limits are
read from sacctmgr after the test changes them with `sacctmgr modify qos`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from collector.observables import KEYS, USED
from collector.pressure import WaitDays
from collector.sacct import build_sacct_args
from collector.slurm import slurm_environment
from collector.snapshot import read_snapshot
from collector.store import STATE_FILE, load_store
from tests.slurm_lab.lab import FINISHED, Lab

pytestmark = pytest.mark.slurm

BIN = 60


def write_config(folder: Path, extra_site: str = "", qos_avery: str = "",
                 timezone: str = "America/New_York",
                 history: str = "history_days = 0\n", window_days: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "librarian.toml"
    path.write_text(
        f'[site]\nname = "Lab"\ntimezone = "{timezone}"\ndata_dir = "data"\n{extra_site}\n'
        f"[collect]\nbin_seconds = {BIN}\nwindow_days = {window_days}\nsacct_timeout_seconds = 60\n"
        f"{history}"
        "overlap_minutes = 1\n"
        f'[[qos]]\nname = "avery"\n{qos_avery}\n[[qos]]\nname = "avery-b"\n')
    return path


def cycle(lab: Lab, config: Path, now: int | None = None, *args: str) -> str:
    exe = Path(sys.executable).with_name("librarian")
    out = subprocess.run([str(exe), "collect", "--config", str(config), "--no-plots",
                          "--now", str(now or int(time.time())), *args],
                         env=lab.env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def sacct_cycles(folder: Path) -> list[dict]:
    return json.loads((folder / "data" / "status.json").read_text())["sacct"]["cycles"]


def _efficiency(snap) -> list[tuple]:
    e = snap.efficiency
    names = [e.users[u] for u in e.user.tolist()]
    return sorted(zip(names, e.day_starts[e.day].tolist(),
                      *(np.round(v, 3).tolist() for v in e.sums.values()), strict=True))


def assert_same(a: Path, b: Path, name: str, limits: bool = True, usage: bool = True) -> None:
    """The snapshots agree; `limits`: both knew the QoS limits (a saved file is
    collected without sacctmgr, so it has no limit pressure to compare);
    `usage`: both knew what the jobs used (an --allocations answer saved to a
    file has no steps: its used series and efficiency sums are empty)."""
    x, y = read_snapshot(a / "data" / name), read_snapshot(b / "data" / name)
    assert x.now == y.now
    assert x.users == y.users
    used = {o.key for o in USED}
    for obs in x.series:
        if obs in used and not usage:
            assert not y.series[obs].any(), obs
            continue
        np.testing.assert_allclose(x.series[obs], y.series[obs], atol=1e-3, err_msg=f"{name} {obs}")
        np.testing.assert_allclose(x.current[obs], y.current[obs], atol=1e-3)
    if usage:   # what the ended jobs used: the store's usage queries and a full query's alike
        assert _efficiency(x) == _efficiency(y)
    assert x.jobs_counted == y.jobs_counted
    for by in ("account", "partition"):     # the groupings: folds of the same sums
        gx, gy = x.groups[by], y.groups[by]
        assert gx.names == gy.names, by
        for obs in gx.series:
            if obs in used and not usage:
                continue
            np.testing.assert_allclose(gx.series[obs], gy.series[obs], atol=1e-3,
                                       err_msg=f"{name} {by} {obs}")
    assert set(x.pressure) == set(y.pressure) or not limits   # the queue's parts agree too
    for k in x.pressure if limits else ():
        np.testing.assert_allclose(x.pressure[k].at_limit, y.pressure[k].at_limit, atol=1e-3)
        np.testing.assert_allclose(x.pressure[k].peak, y.pressure[k].peak, atol=1e-3)
    if x.timezone == y.timezone:   # the waits per local day
        assert sorted(zip(x.waits.day.tolist(), x.waits.jobs.tolist(),
                          x.waits.wait.round().tolist(), strict=True)) == \
            sorted(zip(y.waits.day.tolist(), y.waits.jobs.tolist(),
                       y.waits.wait.round().tolist(), strict=True))
    else:   # local days split the same waits elsewhere: each user's whole

        def per_user(w: WaitDays) -> dict[str, tuple[float, float]]:
            out: dict[str, tuple[float, float]] = {}
            for u, j, t in zip(w.user.tolist(), w.jobs.tolist(), w.wait.tolist(), strict=True):
                jobs, wait = out.get(w.users[u], (0.0, 0.0))
                out[w.users[u]] = (jobs + j, wait + t)
            return {u: (j, round(t)) for u, (j, t) in out.items()}
        assert per_user(x.waits) == per_user(y.waits)


def test_incremental_cycles_equal_a_full_query_on_real_slurm(lab: Lab, tmp_path: Path) -> None:
    inc = write_config(tmp_path / "inc")
    assert "full backfill (no store yet" in cycle(lab, inc)
    # It spins for 2 s: the used series must hold more than sleeps' milliseconds
    # of CPU, which round to 0 in a minute's bin (CI saw all of them 0).
    short = lab.submit("alice", "avery", 'timeout 2 sh -c "while :; do :; done"; sleep 2',
                       cpus=2, mem="2G")
    gpu = lab.submit("bob", "avery", "sleep 10", cpus=4, mem="4G", extra=("--gres=gpu:1",))
    fails = lab.submit("carol", "avery-b", "sleep 2; exit 1", cpus=1, mem="1G")
    requeued = lab.submit("carol", "avery", "sleep 120", cpus=3, mem="1G")
    lab.wait_until([requeued], ("RUNNING",), timeout=60)
    time.sleep(2)
    assert "incremental" in cycle(lab, inc)
    lab.run("scontrol", "requeue", requeued)
    assert "incremental" in cycle(lab, inc)
    # A requeued job waits two minutes to be eligible again; let it run now.
    lab.run("scontrol", "update", f"JobId={requeued}", "StartTime=now")
    deadline = time.monotonic() + 60
    while sorted(r.state for r in lab.rows(job_ids=[requeued])) != ["REQUEUED", "RUNNING"]:
        assert time.monotonic() < deadline, lab.rows(job_ids=[requeued])
        time.sleep(0.5)  # one JobIDRaw, two records: the first run and the second
    # Cycles while the jobs run and end.
    for _ in range(3):
        time.sleep(2)
        assert "incremental" in cycle(lab, inc)
    lab.wait_until([short, gpu, fails], FINISHED, timeout=90)
    store = load_store(tmp_path / "inc" / "data" / "store")
    assert store is not None
    jobs = store.jobs("")
    assert int((jobs.job_id == int(requeued)).sum()) == 2

    # A cycle missed for a day: the store says it last synced 25 hours ago.
    state_path = tmp_path / "inc" / "data" / "store" / STATE_FILE
    state = json.loads(state_path.read_text())
    state["synced_to"] -= 25 * 3600
    state_path.write_text(json.dumps(state))
    cycle(lab, inc)
    last = sacct_cycles(tmp_path / "inc")[-1]
    assert last["mode"] == "incremental"
    assert last["queries"] >= 2  # 25 hours asked in day-sized pieces

    # Deleted, then damaged, between cycles: rebuilt by a full query each time.
    for path in (tmp_path / "inc" / "data" / "store").iterdir():
        path.unlink()
    assert "no store yet" in cycle(lab, inc)
    jobs_path = max((tmp_path / "inc" / "data" / "store").glob("cold-*.arrow"),
                    key=lambda p: p.stat().st_size)
    jobs_path.write_bytes(jobs_path.read_bytes()[:100])
    out = cycle(lab, inc)
    assert "job store damaged" in out
    assert "checksum" in out
    assert list((tmp_path / "inc" / "data").glob("store.damaged-*"))
    assert "incremental" in cycle(lab, inc)

    now = int(time.time())
    cycle(lab, inc, now)
    full = write_config(tmp_path / "full")
    assert "full backfill (--full" in cycle(lab, full, now, "--full")
    # And without the store at all: sacct's whole answer saved, collected from the file.
    window_start = read_snapshot(tmp_path / "inc" / "data" / "data_avery.json").window_start
    # (sacct prints UTC, as for the collector; the file is read in the site's zone: UTC.)
    answer = subprocess.run(build_sacct_args("sacct", ["avery", "avery-b"], window_start, now),
                            env=slurm_environment(lab.env), capture_output=True, text=True,
                            check=True, timeout=60)
    plain = write_config(tmp_path / "plain", timezone="UTC")
    (tmp_path / "plain" / "sacct.txt").write_text(answer.stdout)
    cycle(lab, plain, now, "--sacct-file", str(tmp_path / "plain" / "sacct.txt"))
    for name in ("data_avery.json", "data_avery-b.json"):
        assert_same(tmp_path / "inc", tmp_path / "full", name)
        assert_same(tmp_path / "inc", tmp_path / "plain", name, limits=False, usage=False)
    snap = read_snapshot(tmp_path / "inc" / "data" / "data_avery.json")
    assert {"alice", "bob", "carol"} <= set(snap.users)
    # Real sacct names each job's account and partition: the groups have them.
    for by in ("account", "partition"):
        assert snap.groups[by].names, by
        assert "" not in snap.groups[by].names, (by, snap.groups[by].names)
    # The lab gathers job accounting: the ended jobs' CPU time reached the snapshots.
    assert snap.efficiency.sums["cpu_held"].sum() > 0
    assert snap.series["USED_NCPUS"].any()
    modes = [c["mode"] for c in sacct_cycles(tmp_path / "inc")]
    assert modes.count("full") == 3  # first run, deleted store, damaged store
    lab.cancel(requeued)


def test_limits_come_from_sacctmgr_and_step_when_changed(lab: Lab, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    t1 = int(time.time())
    cycle(lab, config, t1)
    snap = read_snapshot(tmp_path / "data" / "data_avery.json")
    assert snap.thresholds["NCPUS"] == 430
    assert snap.thresholds["NGPUS"] == 39
    assert snap.thresholds["MEMORY"] == 3359
    assert read_snapshot(tmp_path / "data" / "data_avery-b.json").thresholds["NCPUS"] == 16
    try:
        lab.run("sacctmgr", "-i", "modify", "qos", "avery", "set", "GrpTRES=mem=3000G,cpu=400")
        t2 = t1 + 120
        cycle(lab, config, t2)
        snap = read_snapshot(tmp_path / "data" / "data_avery.json")
        assert snap.thresholds["MEMORY"] == 3000
        assert snap.thresholds["NCPUS"] == 400
        assert snap.thresholds["NGPUS"] == 39
        assert [v for _, v in snap.threshold_steps["MEMORY"]] == [3359, 3000]
        assert snap.threshold_steps["MEMORY"][1][0] == t2
        assert len(snap.threshold_steps["NGPUS"]) == 1
        history = json.loads((tmp_path / "data" / "limits.json").read_text())["qos"]["avery"]
        assert [e["memory_gb"] for e in history] == [3359, 3000]
    finally:
        lab.run("sacctmgr", "-i", "modify", "qos", "avery", "set", "GrpTRES=mem=3359G,cpu=430")
    # A number in the configuration wins over Slurm's; the rest still come from Slurm.
    override = write_config(tmp_path / "override", qos_avery="limits = { cpus = 100 }")
    cycle(lab, override)
    snap = read_snapshot(tmp_path / "override" / "data" / "data_avery.json")
    assert (snap.thresholds["NCPUS"], snap.thresholds["NGPUS"]) == (100, 39)
    # "none": no limit lines at all.
    none = write_config(tmp_path / "none", qos_avery='limits = "none"')
    cycle(lab, none)
    assert read_snapshot(tmp_path / "none" / "data" / "data_avery.json").thresholds["NCPUS"] is None


def test_clusters_are_asked_with_dash_M(lab: Lab, tmp_path: Path) -> None:
    lab.run("sacctmgr", "-i", "add", "cluster", "lab2", check=False)
    now = int(time.time())
    local = write_config(tmp_path / "local")
    cycle(lab, local, now)
    named = write_config(tmp_path / "named", extra_site='clusters = ["lab", "lab2"]')
    out = cycle(lab, named, now, "-v")
    asked = set(re.findall(r"running sacct .*?--clusters=(\w+)", out))
    assert asked == {"lab", "lab2"}, out[-2000:]
    data = tmp_path / "named" / "data"
    for qos in ("avery", "avery-b"):
        a = read_snapshot(tmp_path / "local" / "data" / f"data_{qos}.json")
        b = read_snapshot(data / f"data_lab_{qos}.json")
        assert b.cluster == "lab"
        assert a.users == b.users
        np.testing.assert_allclose(a.series["NCPUS"], b.series["NCPUS"], atol=1e-3)
        empty = read_snapshot(data / f"data_lab2_{qos}.json")
        assert empty.cluster == "lab2"
        assert empty.users == ()


def test_a_history_read_in_over_cycles_equals_a_full_query_on_real_slurm(
        lab: Lab, tmp_path: Path) -> None:
    """The history beyond the window, read one older day per cycle, equals one
    query of the whole history. The lab's jobs are minutes old, so the cycles
    run at a `now` a day and a half ahead: its window holds none of them and
    its history all of them."""
    done = [lab.submit("alice", "avery", "sleep 2", cpus=2, mem="1G"),
            lab.submit("bob", "avery-b", "sleep 3", cpus=1, mem="1G")]
    lab.wait_until(done, FINISHED, timeout=90)
    history = "history_days = 3\nhistory_days_per_cycle = 1\nbackfill_pause_seconds = 0.1\n"
    inc = write_config(tmp_path / "inc", history=history, window_days=1, timezone="UTC")
    now = int(time.time()) + 36 * 3600
    assert "full backfill (no store yet" in cycle(lab, inc, now)
    for k in range(1, 4):
        cycle(lab, inc, now + k * BIN)
    status = json.loads((tmp_path / "inc" / "data" / "status.json").read_text())
    assert "complete" in status["steps"]["history"]["detail"]
    modes = [c["mode"] for c in sacct_cycles(tmp_path / "inc")]
    assert modes == ["full", "incremental", "incremental", "incremental"]
    end = now + 3 * BIN
    snap = read_snapshot(tmp_path / "inc" / "data" / "data_avery.json")
    keep_from = snap.window_start - 2 * 86400
    answer = subprocess.run(build_sacct_args("sacct", ["avery", "avery-b"], keep_from, end),
                            env=slurm_environment(lab.env), capture_output=True, text=True,
                            check=True, timeout=60)
    plain = write_config(tmp_path / "plain", history=history, window_days=1, timezone="UTC")
    (tmp_path / "plain" / "sacct.txt").write_text(answer.stdout)
    cycle(lab, plain, end, "--sacct-file", str(tmp_path / "plain" / "sacct.txt"))
    # The saved answer has no steps: what the jobs used is compared elsewhere.
    held = [i for i, k in enumerate(KEYS) if k not in {o.key for o in USED}]

    def days(folder: Path, name: str) -> tuple:
        h = read_snapshot(folder / "data" / name).history
        assert h is not None
        keep = [i for i, _ in enumerate(h.users) if h.seconds[:, i].any() or h.started[i].any()]
        return [h.users[i] for i in keep], h.seconds[held][:, keep], h.started[keep]

    for name in ("data_avery.json", "data_avery-b.json"):
        (ux, sx, jx), (uy, sy, jy) = days(tmp_path / "inc", name), days(tmp_path / "plain", name)
        assert ux == uy, name
        np.testing.assert_allclose(sx, sy, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(jx, jy, err_msg=name)
    h = read_snapshot(tmp_path / "inc" / "data" / "data_avery.json").history
    assert h is not None
    assert "alice" in h.users
    assert h.seconds[:, h.users.index("alice")].sum() > 0     # her job, before the window
