"""The efficiency table in real Chromium, on the Dash page and in the static
export (plain and anonymised): each user's efficiencies, "not recorded" where
Slurm kept nothing, the jobs running now, and flags drawn as quiet badges
whose tooltip says what to try."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

from app.export import Privacy, export_site
from app.privacy import pseudonym
from collector.config import load_config
from collector.demo import run_demo
from collector.efficiency import SUMS, EfficiencyDays
from collector.pressure import local_days
from collector.snapshot import read_snapshot, snapshot_path, write_snapshot
from tests.browser import chromium, gunicorn, new_page, until
from tests.test_export import http_server

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
COLUMNS = ["User", "Jobs ended", "Running now", "CPU (%)", "Memory (%)", "Time (%)", "GPU (%)",
           "Unused (CPU-h)", "Unused (GB-h)", "Worth a look"]


def rows(page) -> dict[str, list[str]]:
    return page.evaluate("""() => {
        const out = {};
        document.querySelectorAll('#efficiency-table tr').forEach(tr => {
            const cells = [...tr.querySelectorAll('td')].map(td => td.innerText.trim());
            if (cells.length) { out[cells[0]] = cells; }
        });
        return out;
    }""")


def headers(page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('#efficiency-table th')]"
                         ".map(th => th.innerText.trim()).filter(t => t)")


def badges(page) -> list[dict[str, str]]:
    """Each flag's badge: its words, its tooltip (the static page's title), and
    whether it is drawn as a badge (a rounded, bordered box) and not as text."""
    return page.evaluate("""() => [...document.querySelectorAll(
            '#efficiency-table .flag-badge')]
        .map(b => { const s = getComputedStyle(b);
                    return {text: b.innerText.trim(), title: b.title || "",
                            badge: parseFloat(s.borderTopLeftRadius) > 0 && s.borderTopStyle === "solid"
                                   && s.display === "inline-block"}; })""")


def check_table(page, names: dict[str, str]) -> None:
    """The rows the fixture set, under the names the page shows (`names`)."""
    until(page, TABLE_FILLED)
    assert headers(page) == COLUMNS
    table = rows(page)
    alice, bob = table[names["alice"]], table[names["bob"]]
    assert alice[1:7] == ["3", "0", "95", "not recorded", "67", "no GPU jobs"]
    assert alice[-1] == ""
    assert bob[1:6] == ["1", "0", "0", "3", "14"]
    assert bob[7:9] == ["319.0", "1,940.0"]   # thousands separated, the column's decimal
    flags = badges(page)
    assert [b["text"] for b in flags] == ["CPUs", "memory", "time limit"]
    assert all(b["badge"] for b in flags), flags
    # The demo's other users run jobs now and have ended none in the fixture:
    # they read "running", never a guessed figure.
    running = [r for name, r in table.items() if name not in (names["alice"], names["bob"])]
    assert running
    for r in running:
        assert int(r[2]) > 0
        assert r[3:7] == ["running"] * 4


USED = """(id) => {
    const el = document.getElementById(id);
    const gd = el.querySelector('.js-plotly-plot') || el;
    const sum = (kind) => gd._fullData.filter(t => t.meta === kind && t.visible === true)
        .reduce((acc, t) => { Array.from(t.y).forEach((v, i) => { acc[i] = (acc[i] || 0) + v; });
                              return acc; }, []);
    const used = sum('used'), held = sum('running');
    return {users: gd.data.filter(t => t.meta === 'used' && t.visible === true).map(t => t.name),
            hidden: gd.data.filter(t => t.meta === 'used' && t.visible === 'legendonly')
                .map(t => t.name),
            over: used.filter((v, i) => v > (held[i] || 0) + 1e-6).length,
            used: used.reduce((a, b) => a + b, 0), held: held.reduce((a, b) => a + b, 0)};
}"""


def check_used(page) -> None:
    """The demo's ended jobs recorded what they used: CPU and memory charts
    shade it inside the held stack (never above it here), GPUs and jobs not;
    a user hidden in the legend takes their used part along; the queued view
    draws none."""
    until(page, "() => document.querySelectorAll('#graph-ncpus .trace').length > 0")
    cpu = page.evaluate(USED, "graph-ncpus")
    mem = page.evaluate(USED, "graph-memory")
    assert cpu["users"], cpu
    assert mem["users"], mem
    assert 0 < cpu["used"] < cpu["held"]
    assert 0 < mem["used"] < mem["held"]
    assert cpu["over"] == 0
    assert not page.evaluate(USED, "graph-ngpus")["users"]
    assert not page.evaluate(USED, "graph-njobs")["users"]
    assert "darker part" in page.inner_text("body")
    user = cpu["users"][0]
    page.click(f"#legend .legend-item[data-user='{user}']")
    until(page, "(u) => { const el = document.getElementById('graph-ncpus');"
                " const gd = el.querySelector('.js-plotly-plot') || el;"
                " return gd.data.some(t => t.meta === 'used' && t.name === u"
                " && t.visible === 'legendonly'); }", arg=user)
    after = page.evaluate(USED, "graph-ncpus")
    assert user in after["hidden"]
    assert user not in after["users"]
    assert after["used"] < cpu["used"]
    page.click(f"#legend .legend-item[data-user='{user}']")   # back
    page.click("#show-mode >> text=Queued")
    until(page, "() => location.search.includes('show=queued')")
    until(page, "() => { const el = document.getElementById('graph-ncpus');"
                " const gd = el.querySelector('.js-plotly-plot') || el;"
                " return gd.data.every(t => t.meta !== 'used' || t.visible !== true); }")
    page.click("#show-mode >> text=Running")
    until(page, "() => location.search.indexOf('show=queued') < 0")
    until(page, "() => { const el = document.getElementById('graph-ncpus');"   # the shade is back
                " const gd = el.querySelector('.js-plotly-plot') || el;"
                " return gd.data.some(t => t.meta === 'used' && t.visible === true); }")


def test_dash_page(site: Path, tmp_path: Path) -> None:
    errors: list[str] = []
    with gunicorn(site / "librarian.toml") as base, chromium(tmp_path) as browser:
        page = new_page(browser, errors)
        page.goto(base + "/?qos=avery&range=7d")
        check_table(page, {"alice": "alice", "bob": "bob"})
        # Each flag's tooltip says what to try.
        titles = [b["title"] for b in badges(page)]
        assert "fewer CPUs" in titles[0]
        assert "smaller --mem" in titles[1]
        assert "shorter --time" in titles[2]
        page.set_viewport_size({"width": 1400, "height": 2800})
        page.screenshot(path=str(tmp_path / "dash-efficiency.png"), full_page=True)
        check_used(page)
        page.screenshot(path=str(tmp_path / "dash-used.png"))
    assert not errors, errors


@pytest.mark.parametrize("anonymised", [False, True])
def test_static_export(site: Path, tmp_path: Path, anonymised: bool) -> None:
    out = tmp_path / "site"
    privacy = Privacy(key=b"k" * 32) if anonymised else Privacy()
    export_site(load_config(site / "librarian.toml"), out, privacy)
    names = {"alice": "alice", "bob": "bob"}
    if anonymised:   # the pseudonyms the export keeps, and no real name in its data
        names = {u: pseudonym(u, privacy.key) for u in names}
        # Every text of the data but the charts' packed numbers (base64 `bdata`,
        # where any three letters may turn up by chance).
        texts: list[str] = []

        def walk(node: object, key: str = "") -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    texts.append(k)
                    walk(v, k)
            elif isinstance(node, list):
                for v in node:
                    walk(v, key)
            elif isinstance(node, str) and key != "bdata":
                texts.append(node)

        walk(json.loads((out / "data" / "avery.json").read_text()))
        data = "\n".join(texts)
        assert "alice" not in data
        assert "bob" not in data
        assert all(p in data for p in names.values())
    errors: list[str] = []
    with http_server(out) as url, chromium(tmp_path) as browser:
        page = new_page(browser, errors)
        page.goto(url + "/?qos=avery&range=7d")
        check_table(page, names)
        titles = [b["title"] for b in badges(page)]
        assert "fewer CPUs" in titles[0]
        assert "smaller --mem" in titles[1]
        assert "shorter --time" in titles[2]
        assert "not zero" in page.inner_text("#efficiency-note")
        # Another preset redraws the table (the fixture's cells are today's: the same rows).
        page.click("text=30d")
        until(page, "() => location.search.includes('range=30d')")
        check_table(page, names)
        check_used(page)
        page.click("#theme-switch")
        until(page, "() => document.documentElement.getAttribute('data-bs-theme') === 'dark'")
        assert all(b["badge"] for b in badges(page))
        page.set_viewport_size({"width": 1400, "height": 2800})
        page.screenshot(path=str(tmp_path / "static-efficiency.png"), full_page=True)
    assert not errors, errors
