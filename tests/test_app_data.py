"""The app's snapshot store: cached by file version, clear errors per QoS, no stray paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from flask import Flask
from flask_caching import Cache

from app.data import SnapshotStore, cache_config
from collector.collect import collect
from collector.config import load_config
from tests.browser import free_port
from tests.conftest import config_text

NOW = "2026-11-25T21:00:00+00:00"


@pytest.fixture
def config(tmp_path: Path, samples: Path):
    (tmp_path / "librarian.toml").write_text(config_text())
    cfg = load_config(tmp_path / "librarian.toml")
    collect(cfg, 1795640400, sacct_file=samples / "sacct_avery.txt", plots=False)
    return cfg


def store_for(config, kind: str = "simple") -> SnapshotStore:
    if kind != "simple":
        config = type(config)(**{**config.__dict__, "app": type(config.app)(cache=kind)})
    flask = Flask(__name__)
    return SnapshotStore(config, Cache(flask, config=cache_config(config)))


@pytest.mark.parametrize("kind", ["simple", "filesystem"])
def test_loads_and_caches_until_the_file_changes(config, kind: str) -> None:
    store = store_for(config, kind)
    first = store.load("avery")
    assert first.error is None
    assert first.snapshot.users == ("bob", "alice", "carol")
    path = config.site.data_dir / "data_avery.json"
    doc = json.loads(path.read_text())
    doc["users"] = ["bob", "alice"]
    path.write_text(json.dumps(doc))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = store.load("avery")
    assert second.version != first.version
    assert second.snapshot.users == ("bob", "alice")


def test_missing_and_broken_snapshots_are_messages(config) -> None:
    store = store_for(config)
    (config.site.data_dir / "data_avery-b.json").unlink()
    missing = store.load("avery-b")
    assert missing.snapshot is None
    assert "data_avery-b.json is missing" in missing.error
    (config.site.data_dir / "data_avery.json").write_text('{"schema_version": 1, "meta')
    broken = store.load("avery")
    assert broken.snapshot is None
    assert "cannot be read" in broken.error


def test_only_configured_qos_names_become_paths(config) -> None:
    store = store_for(config)
    with pytest.raises(KeyError):
        store.path("../../etc/passwd")


def test_demo_ends_by_serving_the_dashboard(tmp_path: Path) -> None:
    port = free_port()
    exe = Path(sys.executable).with_name("librarian")
    proc = subprocess.Popen([str(exe), "demo", "--dir", str(tmp_path / "demo"), "--no-plots",
                             "--port", str(port), "-q"], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "Dashboard of the demo data" in line:
                break
        assert f"http://127.0.0.1:{port}/" in lines[-1]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    assert r.status == 200
                    assert b"HiPerGator" in r.read()
                    break
            except OSError:
                assert time.monotonic() < deadline, "the demo dashboard did not answer"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]


@pytest.mark.filterwarnings("ignore::DeprecationWarning:dash")
def test_several_clusters_give_one_tab_each_reading_its_own_snapshot(tmp_path: Path,
                                                                     samples: Path) -> None:
    from app.layout import build_layout

    text = config_text().replace('data_dir = "data"', 'data_dir = "data"\nclusters = ["hpg", "ai"]')
    (tmp_path / "librarian.toml").write_text(text)
    cfg = load_config(tmp_path / "librarian.toml")
    collect(cfg, 1795640400, sacct_file=samples / "sacct_avery.txt", plots=False)
    assert (tmp_path / "data" / "data_ai_avery.json").exists()
    tabs = [c for c in _walk(build_layout(cfg)) if type(c).__name__ == "Tab"]
    assert [(t.label, t.tab_id) for t in tabs] == [
        ("avery (hpg)", "avery@hpg"), ("avery-b (hpg)", "avery-b@hpg"),
        ("avery (ai)", "avery@ai"), ("avery-b (ai)", "avery-b@ai")]
    store = store_for(cfg)
    loaded = store.load("avery@ai")
    assert loaded.snapshot is not None
    assert loaded.snapshot.cluster == "ai"
    with pytest.raises(KeyError):
        store.path("avery")  # a bare QoS name is not a tab when clusters are named


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    if children is None:
        return
    for child in children if isinstance(children, list) else [children]:
        if hasattr(child, "children") or hasattr(child, "label"):
            yield from _walk(child)
