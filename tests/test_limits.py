"""QoS limits from sacctmgr, the configuration's overrides, their dated history,
and the stepped limit line in snapshots and charts."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.figures import resolve_view, usage_figure
from collector.binning import make_window
from collector.collect import current_limits
from collector.config import Limits, QosConfig, load_config
from collector.limits import (
    LimitsError,
    effective_limits,
    grp_tres_limits,
    limit_steps,
    parse_sacctmgr_qos,
    read_history,
    record_limits,
)
from collector.observables import KEYS
from collector.snapshot import Snapshot, from_dict, to_dict
from tests.conftest import config_text

NOW = 1_795_640_400


def test_parses_the_real_sacctmgr_capture(samples: Path) -> None:
    limits = parse_sacctmgr_qos((samples / "sacctmgr_qos.txt").read_text())
    assert limits["avery"] == Limits(cpus=430, gpus=39, memory_gb=3359)
    assert limits["avery-b"] == Limits(cpus=16, gpus=4, memory_gb=64)
    assert limits["normal"] == Limits()


@pytest.mark.parametrize(("tres", "expected"), [
    ("cpu=8,mem=2048", Limits(cpus=8, memory_gb=2)),          # MiB when no unit
    ("gres/gpu:a100=2,gres/gpu:v100=3", Limits(gpus=5)),      # typed GPUs summed
    ("mem=1T", Limits(memory_gb=1024)),
    ("", Limits()),
])
def test_grp_tres(tres: str, expected: Limits) -> None:
    assert grp_tres_limits(tres) == expected


@pytest.mark.parametrize(("text", "match"), [
    ("", "nothing"),
    ("Name|Other\navery|x\n", "lacks Name or GrpTRES"),
    ("Name|GrpTRES\navery|cpu=4|extra\n", "line 2 has 3 fields"),
    ("Name|GrpTRES\navery|cpu=lots\n", "QoS 'avery'"),
])
def test_bad_sacctmgr_output_is_named(text: str, match: str) -> None:
    with pytest.raises(LimitsError, match=match):
        parse_sacctmgr_qos(text)


def test_configured_numbers_override_slurm_and_none_ignores_it() -> None:
    slurm = Limits(cpus=430, gpus=39, memory_gb=3359)
    q = QosConfig("avery", Limits(cpus=100))
    assert effective_limits(q, slurm) == Limits(cpus=100, gpus=39, memory_gb=3359)
    assert effective_limits(replace(q, auto_limits=False), slurm) == Limits(cpus=100)
    assert effective_limits(QosConfig("x"), None) == Limits()


def test_history_records_changes_only_and_steps_follow_them() -> None:
    window = make_window(NOW, 3600, 48)
    h = record_limits({}, "avery", Limits(cpus=430, gpus=39), NOW - 40 * 3600, window.start)
    h = record_limits(h, "avery", Limits(cpus=430, gpus=39), NOW - 30 * 3600, window.start)
    assert len(h["avery"]) == 1  # unchanged: nothing added
    h = record_limits(h, "avery", Limits(cpus=500, gpus=39), NOW - 10 * 3600, window.start)
    steps = limit_steps(h["avery"], window)
    assert steps["NCPUS"] == ((window.start, 430.0), (NOW - 10 * 3600, 500.0))
    assert steps["NGPUS"] == ((window.start, 39.0),)
    assert steps["MEMORY"] == ((window.start, None),)
    # A collection "in the past" changes nothing.
    assert record_limits(h, "avery", Limits(cpus=1), NOW - 20 * 3600, window.start) == h


def snapshot_with_steps() -> Snapshot:
    window = make_window(NOW, 3600, 48)
    n = window.n_bins
    return Snapshot(
        qos="avery", site="T", timezone="America/New_York", now=NOW, bin_seconds=3600,
        window_start=window.start, n_bins=n, users=("alice",),
        series={o: np.ones((1, n)) for o in KEYS},
        current={o: np.ones(1) for o in KEYS},
        thresholds=Limits(cpus=500, gpus=39, memory_gb=None).thresholds(),
        threshold_steps={"NCPUS": ((window.start, 430.0), (NOW - 10 * 3600, 500.0)),
                         "NGPUS": ((window.start, 39.0),)},
    )


def test_steps_survive_the_snapshot_file_and_draw_two_limit_segments() -> None:
    snap = snapshot_with_steps()
    back = from_dict(to_dict(snap))
    assert back.threshold_steps == snap.threshold_steps
    fig = usage_figure(back, "NCPUS", resolve_view(back, "3d"))
    shapes = [s for s in fig["layout"]["shapes"] if s["y0"] == s["y1"]]
    assert [s["y0"] for s in shapes] == [430.0, 500.0]
    assert shapes[0]["x1"] == shapes[1]["x0"]  # they meet where the limit changed
    (riser,) = [s for s in fig["layout"]["shapes"] if s["y0"] != s["y1"]]
    assert (riser["x0"], riser["y0"], riser["y1"]) == (shapes[1]["x0"], 430.0, 500.0)
    assert fig["layout"]["annotations"][0]["text"] == "QoS limit 500"
    # A 6-hour view lies after the change: one segment, at the new limit.
    assert [s["y0"] for s in usage_figure(back, "NCPUS", resolve_view(back, "6h"))
            ["layout"]["shapes"]] == [500.0]
    gpus = usage_figure(back, "NGPUS", resolve_view(back, "3d"))["layout"]["shapes"]
    assert len(gpus) == 1
    assert gpus[0]["xref"] == "paper"


def test_a_failing_sacctmgr_keeps_the_last_known_limits(tmp_path: Path) -> None:
    (tmp_path / "librarian.toml").write_text(
        config_text().replace('limits = { cpus = 430, gpus = 39, memory_gb = 3359 }',
                              'limits = "auto"'))
    config = load_config(tmp_path / "librarian.toml")
    window = make_window(NOW, 3600, 24)

    def good(args, **_):
        return subprocess.CompletedProcess(args, 0, b"Name|GrpTRES\navery|cpu=64,mem=128G\n", b"")

    def bad(args, **_):
        return subprocess.CompletedProcess(args, 1, b"", b"sacctmgr: error: Problem talking to the database")

    first = current_limits(config, window, runner=good)
    assert first.limits["avery"] == Limits(cpus=64, memory_gb=128)
    assert first.limits["avery-b"] == Limits(cpus=16, gpus=4, memory_gb=64)  # configured
    later = make_window(NOW + 600, 3600, 24)
    second = current_limits(config, later, runner=bad)
    assert "Problem talking to the database" in second.warning
    assert second.limits["avery"] == Limits(cpus=64, memory_gb=128)
    assert len(read_history(config.site.data_dir)["avery"]) == 1
