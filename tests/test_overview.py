"""The overview: one row per QoS, hand-worked, and as `collect` writes it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from app.figures import resolve_view
from app.queue_view import pressure_rows
from collector.collect import collect
from collector.config import load_config
from collector.config_model import EfficiencyConfig
from collector.efficiency import NO_EFFICIENCY
from collector.observables import KEYS
from collector.overview import OVERVIEW_FILE, overview_row, read_overview
from collector.pressure import Pressure
from collector.snapshot import QueueState, Snapshot, read_snapshot, snapshot_path
from collector.squeue import QueueRow
from tests.conftest import config_text

H = 3600
NOW = 1_790_000_000 - 1_790_000_000 % 86400 + 12 * H   # noon UTC, on a bin boundary
N_BINS = 10 * 24                                       # ten days of hours


def _snap() -> Snapshot:
    """ann holds 10 of 10 CPUs for the last 14 h and 2 GPUs for the last 24 h;
    bob held 4 CPUs for 10 h eight days ago (outside the 7 days)."""
    series = {k: np.zeros((2, N_BINS)) for k in KEYS}
    series["NCPUS"][0, -14:] = 10
    series["NGPUS"][0, -24:] = 2
    series["NJOBS"][0, -24:] = 1
    series["NCPUS"][1, -8 * 24:-8 * 24 + 10] = 4
    series["NJOBS"][1, -8 * 24:-8 * 24 + 10] = 1
    at_limit = np.zeros(N_BINS)
    at_limit[-14:] = H                  # at the CPU limit for those 14 h
    waiting = np.zeros(N_BINS)
    waiting[-3:] = H
    current = {k: np.array([series[k][0, -1], 0.0]) for k in KEYS}
    return Snapshot(
        qos="grp", site="T", timezone="UTC", now=NOW, bin_seconds=H,
        window_start=NOW - N_BINS * H, n_bins=N_BINS, users=("ann", "bob"), series=series,
        current=current, thresholds={"NCPUS": 10.0, "NGPUS": 8.0, "MEMORY": None},
        pressure={"NCPUS": Pressure(at_limit, waiting, series["NCPUS"].sum(axis=0)),
                  "NGPUS": Pressure(np.zeros(N_BINS), np.zeros(N_BINS),
                                    series["NGPUS"].sum(axis=0))},
        queue=QueueState(read_at=NOW, rows=(
            QueueRow("ann", 3, 12.0, 1.0, 48.0, 600.0, "QOSGrpCpuLimit", "at the CPU limit", 1),
            QueueRow("bob", 1, 2.0, 0.0, 4.0, 60.0, "Priority", "priority", 0))),
        efficiency=NO_EFFICIENCY)


def test_a_row_is_what_the_qos_holds_now_and_over_seven_days_hand_worked() -> None:
    row = overview_row(_snap(), "grp", "grp", EfficiencyConfig())
    assert (row.users, row.running, row.pending, row.held) == (1, 1, 4, 1)  # bob: 8 days ago
    assert row.queue_known
    cpu, gpu, mem = (row.resource(k) for k in ("NCPUS", "NGPUS", "MEMORY"))
    assert cpu is not None
    assert gpu is not None
    assert mem is not None
    assert (cpu.now, cpu.limit, cpu.share_now) == (10.0, 10.0, 100.0)
    assert cpu.share_7d == pytest.approx(100 * 14 * 10 / (10 * 168))    # 8.33 %
    assert cpu.at_limit_h == pytest.approx(14.0)
    assert cpu.queued == 14.0
    assert gpu.share_now == pytest.approx(25.0)
    assert gpu.share_7d == pytest.approx(100 * 24 * 2 / (8 * 168))
    assert gpu.at_limit_h == 0.0
    assert gpu.queued == 1.0
    assert (mem.limit, mem.share_now, mem.share_7d, mem.queued) == (None, None, None, 52.0)
    assert row.at_limit_h == pytest.approx(14.0)
    assert (row.flagged, row.flags) == (0, {})


def test_the_rows_numbers_are_the_pages_seven_day_pressure() -> None:
    snap = _snap()
    row = overview_row(snap, "grp", "grp", EfficiencyConfig())
    page = {r["key"]: r for r in pressure_rows(snap, resolve_view(snap, "7d"))}
    for key, p in page.items():
        r = row.resource(key)
        assert r is not None
        assert r.at_limit_h == pytest.approx(p["at_limit_h"])
        assert r.share_7d == pytest.approx(p["mean_share"])


def test_collect_writes_a_row_per_qos_and_keeps_the_others_with_qos(
        tmp_path: Path, samples: Path) -> None:
    (tmp_path / "librarian.toml").write_text(config_text())
    cfg = load_config(tmp_path / "librarian.toml")
    sacct = samples / "sacct_avery.txt"
    collect(cfg, 1795640400, sacct_file=sacct, plots=False)
    rows = read_overview(cfg.site.data_dir)
    assert list(rows) == ["avery", "avery-b"]
    snap = read_snapshot(snapshot_path(cfg.site.data_dir, "avery"))
    # From the numbers in memory; the file's are rounded to 4 decimals.
    written = asdict(overview_row(snap, "avery", "avery", cfg.efficiency))
    for a, b in zip(asdict(rows["avery"])["resources"], written["resources"], strict=True):
        assert a["key"] == b["key"]
        for k in ("now", "limit", "share_now", "share_7d", "at_limit_h", "queued"):
            assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-9), (a["key"], k)
    assert asdict(rows["avery"]) | {"resources": None} == written | {"resources": None}
    assert rows["avery"].users == 3
    assert rows["avery-b"].users == 0
    # One QoS collected: the other's row stays as it was.
    collect(cfg, 1795640400 + 3600, qos_names=["avery"], sacct_file=sacct, plots=False)
    again = read_overview(cfg.site.data_dir)
    assert again["avery"].now == 1795640400 + 3600
    assert again["avery-b"] == rows["avery-b"]
    # A damaged file is read as none and written again whole.
    (cfg.site.data_dir / OVERVIEW_FILE).write_text("[")
    assert read_overview(cfg.site.data_dir) == {}
    collect(cfg, 1795640400 + 7200, sacct_file=sacct, plots=False)
    assert list(read_overview(cfg.site.data_dir)) == ["avery", "avery-b"]
