"""The queue on the page, in real Chromium: the running / queued / both switch
(kept in the URL), the limit sentence, the queue table, the limit-pressure
card and the wait history, in the Dash app (gunicorn) and the static export."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from app.export import export_site
from collector.config import load_config
from collector.demo import run_demo
from collector.pressure import AtLimitNow
from collector.snapshot import read_snapshot, snapshot_path, write_snapshot
from tests.browser import chromium, gunicorn, new_page, until
from tests.test_export import http_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo (its synthetic queue included), with avery at its GPU limit now."""
    folder = tmp_path_factory.mktemp("queue-site")
    result = run_demo(folder, plots=False, now=time.time() - 60)
    config = load_config(result.config_path)
    path = snapshot_path(config.site.data_dir, "avery")
    snap = read_snapshot(path)
    at = AtLimitNow("NGPUS", 39, 39, (("ana", 24.0), ("ben", 15.0)), 6, float(snap.now + 3600))
    write_snapshot(path, dataclasses.replace(snap, limit_now=(at,)))
    return folder


def traces_of(page, graph: str) -> dict:
    return page.evaluate("""(id) => {
        const gd = document.getElementById(id).querySelector('.js-plotly-plot')
            || document.getElementById(id);
        const out = {running: 0, queued: 0, title: gd.layout.title.text, top: gd.layout.yaxis.range[1],
                     limit: (gd.layout.shapes[0] || {}).y0};
        gd.data.forEach(t => { if (t.visible === true) { out[t.meta] += 1; } });
        return out;
    }""", graph)


QUEUED_DRAWN = """() => {
    const el = document.getElementById('graph-ncpus');
    const gd = el && (el.querySelector('.js-plotly-plot') || el);
    return !!(gd && gd.data && gd.data.some(t => t.meta === 'queued' && t.visible === true));
}"""


def check_switch(page, base: str) -> None:
    running = traces_of(page, "graph-ncpus")
    assert running["running"] > 0
    assert running["queued"] == 0
    page.click("#show-mode >> text=Both")
    until(page, "() => location.search.includes('show=both')")
    until(page, QUEUED_DRAWN)
    both = traces_of(page, "graph-ncpus")
    assert both["running"] > 0
    assert both["queued"] > 0
    assert both["title"].endswith("(running + queued)")
    assert both["top"] >= both["limit"] > 0          # the limit line stays in view
    page.click("#show-mode >> text=Queued")
    until(page, "() => location.search.includes('show=queued')")
    time.sleep(0.5)
    queued = traces_of(page, "graph-ncpus")
    assert queued["running"] == 0
    assert queued["queued"] > 0
    # A link opens in the mode it names.
    page.goto(base + "?qos=avery&range=3d&show=both")
    until(page, QUEUED_DRAWN)


def check_queue_parts(page) -> None:
    until(page, "() => document.getElementById('limit-alert').textContent.includes('holds 39 of 39 GPUs')")
    text = page.inner_text("#limit-alert")
    assert "avery holds 39 of 39 GPUs (ana 24, ben 15); 6 jobs wait for GPUs; running jobs' " \
           "time limits return the first GPU by " in text
    until(page, "() => document.querySelector('#queue-table').innerText.includes('the group is at its QoS CPU limit')")
    assert "Pending jobs as squeue showed them" in page.inner_text("#queue-note")
    pressure = page.inner_text("#pressure-table")
    assert "At the limit (h)" in pressure
    assert "CPUs" in pressure
    assert "430" in pressure
    waits = page.inner_text("#wait-table")
    assert "Median wait" in waits
    assert "All of avery" in waits
    assert page.evaluate("() => document.querySelectorAll('#wait-graph .trace').length") >= 2


def test_dash_page(site: Path, tmp_path: Path) -> None:
    errors: list[str] = []
    with gunicorn(site / "librarian.toml") as base, chromium(tmp_path) as browser:
        page = new_page(browser, errors)
        page.goto(base + "/?qos=avery&range=7d")
        until(page, "() => document.querySelectorAll('#graph-ncpus .trace').length > 0")
        check_switch(page, base + "/")
        check_queue_parts(page)
        page.set_viewport_size({"width": 1400, "height": 2600})
        page.screenshot(path=str(tmp_path / "dash-queue.png"), full_page=True)
    assert not errors, errors


def test_static_export(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    export_site(load_config(site / "librarian.toml"), out)
    errors: list[str] = []
    with http_server(out) as url, chromium(tmp_path) as browser:
        page = new_page(browser, errors)
        page.goto(url + "/?qos=avery&range=7d")
        until(page, "() => document.querySelectorAll('#graph-ncpus .trace').length > 0")
        check_switch(page, url + "/")
        check_queue_parts(page)
        # Dark mode recolours the small charts too and keeps the switch.
        page.click("#theme-switch")
        until(page, "() => document.documentElement.getAttribute('data-bs-theme') === 'dark'")
        assert page.evaluate("() => document.getElementById('wait-graph').layout.paper_bgcolor") \
            == "#212529"
        assert "show=both" in page.url
    assert not errors, errors
