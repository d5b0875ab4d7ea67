"""The efficiency table on the Dash page, in real Chromium: each user's
efficiencies, "not recorded" where Slurm kept nothing, and a flag whose
tooltip says what to try. (The static export's table comes with issue 15's
page work.)"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from collector.config import load_config
from collector.demo import run_demo
from collector.efficiency import SUMS, EfficiencyDays
from collector.pressure import local_days
from collector.snapshot import read_snapshot, snapshot_path, write_snapshot
from tests.browser import chromium, gunicorn, new_page, until

pytestmark = pytest.mark.browser
H = 3600.0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, with avery's efficiency sums set: alice uses what she holds
    (her memory not recorded); bob holds 320 CPU-hours and uses 1, peaks at
    6 of 200 GB, runs 10 h of a 72 h limit."""
    folder = tmp_path_factory.mktemp("efficiency-site")
    result = run_demo(folder, plots=False, now=time.time() - 60)
    config = load_config(result.config_path)
    path = snapshot_path(config.site.data_dir, "avery")
    snap = read_snapshot(path)
    days = local_days(snap.window_start, snap.now, snap.timezone)
    last = len(days) - 2
    cells = {  # alice, bob
        "jobs": [3, 1], "cpu_held": [4 * H * 3, 320 * H], "cpu_used": [3.8 * H * 3, 1 * H],
        "mem_held": [0, 2000 * H], "mem_used": [0, 60 * H], "time_used": [3 * H, 10 * H],
        "time_limit": [4.5 * H, 72 * H], "gpu_jobs": [0, 0], "gpu_held": [0, 0],
        "gpu_used": [0, 0], "gpu_idle_jobs": [0, 0]}
    eff = EfficiencyDays(days, ("alice", "bob"), np.array([0, 1]), np.array([last, last]),
                         {k: np.array(cells[k], dtype=float) for k in SUMS})
    write_snapshot(path, dataclasses.replace(snap, efficiency=eff))
    return folder


TABLE_FILLED = "() => document.querySelectorAll('#efficiency-table td').length > 0"


def rows(page) -> dict[str, list[str]]:
    return page.evaluate("""() => {
        const out = {};
        document.querySelectorAll('#efficiency-table tr').forEach(tr => {
            const cells = [...tr.querySelectorAll('td')].map(td => td.innerText.trim());
            if (cells.length) { out[cells[0]] = cells; }
        });
        return out;
    }""")


def test_dash_page(site: Path, tmp_path: Path) -> None:
    errors: list[str] = []
    with gunicorn(site / "librarian.toml") as base, chromium(tmp_path) as browser:
        page = new_page(browser, errors)
        page.goto(base + "/?qos=avery&range=7d")
        until(page, TABLE_FILLED)
        table = rows(page)
        alice, bob = table["alice"], table["bob"]
        assert alice[1:6] == ["3", "95%", "not recorded", "67%", "no GPU jobs"]
        assert alice[-1] == ""
        assert bob[1:5] == ["1", "0%", "3%", "14%"]
        assert bob[-1] == "cpu, memory, time"
        # The flag's tooltip says what to try.
        page.hover("#efficiency-table td[data-dash-column='flags'] >> text=cpu, memory, time")
        until(page, "() => (document.querySelector('.dash-tooltip') || {}).innerText > ''")
        tip = page.inner_text(".dash-tooltip")
        assert "fewer CPUs" in tip
        assert "smaller --mem" in tip
        assert "shorter --time" in tip
        page.set_viewport_size({"width": 1400, "height": 2800})
        page.screenshot(path=str(tmp_path / "dash-efficiency.png"), full_page=True)
    assert not errors, errors
