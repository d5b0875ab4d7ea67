"""Snapshots written only when their content changed (collector/checked.py).

A cycle that finds a QoS as the last one left it writes nothing for it (and
draws no charts); the index says the file is current as of that cycle, and
every reader then sees the snapshot that cycle would have written.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path

import pytest

from collector.checked import INDEX, content_digest, read_index
from collector.collect import collect
from collector.config import Config, load_config
from collector.plots import PlotJob, draw_many, plot_name
from collector.snapshot import read_snapshot, snapshot_path, to_dict
from tests.conftest import config_text

NOW = datetime.fromisoformat("2026-11-25T21:20:00+00:00").timestamp()


@pytest.fixture
def site(tmp_path: Path) -> Config:
    (tmp_path / "librarian.toml").write_text(config_text(timezone="UTC"))
    return load_config(tmp_path / "librarian.toml")


def _files(config: Config) -> dict[str, int]:
    """The snapshots and charts, with their modification times."""
    data = config.site.data_dir
    return {p.name: p.stat().st_mtime_ns for p in sorted([*data.glob("data_*.json"),
                                                          *data.glob("*.png")])}


def test_the_digest_reads_the_time_as_a_placeholder_and_nothing_else() -> None:
    a = b'{"last_updated":"2026-11-25T21:20:00+00:00","v":[1,2]}'
    b = b'{"last_updated":"2026-11-25T21:30:00+00:00","v":[1,2]}'
    assert content_digest(a, "2026-11-25T21:20:00+00:00") == \
        content_digest(b, "2026-11-25T21:30:00+00:00")
    assert content_digest(a, "2026-11-25T21:20:00+00:00") != \
        content_digest(b.replace(b"[1,2]", b"[1,3]"), "2026-11-25T21:30:00+00:00")
    # Only the whole string: a time that merely starts the same is content.
    c = b'{"t":"2026-11-25T21:20:00+00:00x"}'
    assert content_digest(c, "2026-11-25T21:20:00+00:00") != \
        content_digest(c.replace(b"21:20", b"21:30"), "2026-11-25T21:30:00+00:00")


def test_an_unchanged_qos_is_not_written_again_and_reads_as_of_the_later_cycle(
        site: Config, samples: Path, tmp_path: Path) -> None:
    sacct = samples / "sacct_avery.txt"
    first = collect(site, NOW, sacct_file=sacct)
    assert all(o.changed and o.plots for o in first.outcomes)
    before = _files(site)
    path = snapshot_path(site.site.data_dir, "avery")
    raw = path.read_bytes()

    later = NOW + 600                        # the same hourly bin: nothing new in the file
    second = collect(site, later, sacct_file=sacct)
    assert [(o.changed, o.plots) for o in second.outcomes] == [(False, ()), (False, ())]
    assert _files(site) == before            # no snapshot, no chart touched
    assert path.read_bytes() == raw
    index = read_index(site.site.data_dir)
    assert index[path.name].checked == int(later)
    assert index[path.name].written == int(NOW)

    # What a reader sees is what a fresh write at `later` holds, to the byte.
    fresh_cfg = tmp_path / "fresh" / "librarian.toml"
    fresh_cfg.parent.mkdir()
    fresh_cfg.write_text(config_text(timezone="UTC"))
    fresh = load_config(fresh_cfg)
    collect(fresh, later, sacct_file=sacct, plots=False)
    fresh_path = snapshot_path(fresh.site.data_dir, "avery")
    seen = read_snapshot(path)
    assert seen.now == int(later)
    assert to_dict(seen) == to_dict(read_snapshot(fresh_path))
    assert json.loads(fresh_path.read_bytes())["metadata"]["last_updated"] == \
        "2026-11-25T21:30:00+00:00"
    # Without the index the file says when it was written.
    assert read_snapshot(path, stamp=False).now == int(NOW)


def test_a_change_a_replaced_file_or_a_lost_index_writes_again(
        site: Config, samples: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sacct = tmp_path / "answer.txt"          # (its name is in the snapshot: `source`)
    sacct.write_bytes((samples / "sacct_avery.txt").read_bytes())
    collect(site, NOW, sacct_file=sacct, plots=False)
    data = site.site.data_dir

    # A new bin: the window moved, every series with it.
    moved = collect(site, NOW + 3600, sacct_file=sacct, plots=False)
    assert all(o.changed for o in moved.outcomes)

    # A file put back by hand (another size or time): written again.
    path = snapshot_path(data, "avery-b")
    os.utime(path, ns=(1, 1))
    again = collect(site, NOW + 3600 + 60, sacct_file=sacct, plots=False)
    assert [o.changed for o in again.outcomes] == [False, True]

    # A damaged index: a warning, every file written, a good index after.
    (data / INDEX).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="librarian.collect"):
        lost = collect(site, NOW + 3600 + 120, sacct_file=sacct, plots=False)
    assert all(o.changed for o in lost.outcomes)
    assert INDEX in caplog.text
    assert "written again" in caplog.text
    assert set(read_index(data)) == {"data_avery.json", "data_avery-b.json"}

    # A new job in the answer: its QoS changes, the other (no jobs) does not.
    lines = sacct.read_text().splitlines()
    cells = lines[2].split("|")
    cells[0], cells[15], cells[16] = "dora", "99999", "99999"
    sacct.write_text("\n".join([*lines, "|".join(cells)]) + "\n")
    more = collect(site, NOW + 3600 + 180, sacct_file=sacct, plots=False)
    assert [o.changed for o in more.outcomes] == [True, False]
    assert "dora" in read_snapshot(snapshot_path(data, "avery")).users


def test_charts_are_drawn_again_when_gone_or_when_the_formats_change(
        site: Config, samples: Path) -> None:
    sacct = samples / "sacct_avery.txt"
    collect(site, NOW, sacct_file=sacct)
    data = site.site.data_dir
    gone = data / plot_name("NGPUS", "avery", "", "png")
    gone.unlink()
    redrawn = collect(site, NOW + 60, sacct_file=sacct)
    assert [bool(o.plots) for o in redrawn.outcomes] == [True, False]
    assert gone.exists()

    cfg = Path(site.source)
    cfg.write_text(cfg.read_text() + '\n[plots]\nformats = ["png", "svg"]\n')
    both = load_config(cfg)
    drawn = collect(both, NOW + 120, sacct_file=sacct)
    assert all(len(o.plots) == 8 for o in drawn.outcomes)


def test_many_charts_share_processes_and_stop_starting_at_the_budget(
        site: Config, samples: Path) -> None:
    collect(site, NOW, sacct_file=samples / "sacct_avery.txt", plots=False)
    data = site.site.data_dir
    jobs = [PlotJob(snapshot_path(data, q), "", {}) for q in ("avery", "avery-b")]
    drawn = draw_many(jobs, ("png",), processes=2)
    assert set(drawn) == {j.snapshot for j in jobs}
    assert all(p.read_bytes().startswith(b"\x89PNG") for ps in drawn.values() for p in ps)
    assert len(drawn[jobs[1].snapshot]) == 4

    ticks = iter(range(0, 1000, 10))          # each look at the clock: 10 s later
    one = draw_many(jobs, ("png",), processes=1, budget_seconds=15,
                    clock=lambda: next(ticks))
    assert list(one) == [jobs[0].snapshot]    # the second would start 20 s in


def test_the_app_shows_the_later_cycle_without_a_new_file(site: Config, samples: Path) -> None:
    from flask import Flask
    from flask_caching import Cache

    from app.data import SnapshotStore, cache_config
    from app.figures import freshness

    sacct = samples / "sacct_avery.txt"
    collect(site, NOW, sacct_file=sacct, plots=False)
    store = SnapshotStore(site, Cache(Flask(__name__), config=cache_config(site)))
    first = store.load("avery")
    assert first.snapshot is not None
    assert first.snapshot.now == int(NOW)

    later = NOW + 1800                        # 21:50, still the same bin
    collect(site, later, sacct_file=sacct, plots=False)
    assert store.version("avery") != first.version        # the refresh redraws
    second = store.load("avery")
    assert second.snapshot is not None
    assert second.snapshot.now == int(later)
    # Fresh as of the later cycle: 25 minutes after it the page is not stale,
    # though the file itself is older than three 10-minute intervals by then.
    f = freshness(second.snapshot, later + 25 * 60, 10)
    assert not f.stale
    assert freshness(first.snapshot, later + 25 * 60, 10).stale


def test_the_qos_left_over_by_the_budget_are_drawn_first_next_cycle(
        site: Config, samples: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = Path(site.source)
    # One process, and a budget that lets only the first QoS start.
    cfg.write_text(cfg.read_text() + "\n[plots]\nprocesses = 1\nbudget_seconds = 0.01\n")
    tight = load_config(cfg)
    sacct = samples / "sacct_avery.txt"
    with caplog.at_level(logging.WARNING, logger="librarian.collect"):
        first = collect(tight, NOW, sacct_file=sacct)
    assert [bool(o.plots) for o in first.outcomes] == [True, False]
    assert "1 of 2 QoS drawn within plots.budget_seconds" in caplog.text
    second = collect(tight, NOW + 60, sacct_file=sacct)      # nothing changed
    assert [bool(o.plots) for o in second.outcomes] == [False, True]
    third = collect(tight, NOW + 120, sacct_file=sacct)
    assert [bool(o.plots) for o in third.outcomes] == [False, False]   # all current
