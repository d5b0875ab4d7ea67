"""The alerts in force on the static export's page, in real Chromium: on the
tab they concern, the collector's own on every tab, and no member named in an
anonymised copy (the Dash page's own test is in test_dashboard.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app import alerts
from app.export import Privacy, export_site
from collector.config import load_config
from collector.demo import run_demo
from tests.browser import chromium, new_page, until
from tests.test_export import http_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("alerts-site")
    result = run_demo(folder, plots=False, now=time.time() - 60)
    with result.config_path.open("a") as fh:
        fh.write("\n[alerts]\nat_limit_hours = 4\nhog_percent = 60\nhog_hours = 6\n")
    config = load_config(result.config_path)
    state, _ = alerts.step({"alerts": {}}, [
        alerts.Condition("at_limit|avery|NGPUS", "avery has been at its GPUs limit for 5.2 h",
                         qos="avery"),
        alerts.Condition("hog|avery|NGPUS|ben", "ben holds 70% of avery's GPUs limit while "
                         "others wait", qos="avery"),
        alerts.Condition("failed|collect", "the collect has failed 3 cycles in a row")],
        time.time(), 60)
    alerts.save_state(config.site.data_dir, state)
    return folder


def warning_of(page, url: str) -> str:
    page.goto(url)
    until(page, "() => document.querySelectorAll('#graph-ncpus .trace').length > 0")
    until(page, "() => !document.getElementById('stale-alert').classList.contains('d-none')")
    return page.inner_text("#stale-alert")


@pytest.mark.parametrize("anonymised", [False, True])
def test_the_static_page_shows_the_alerts_of_its_tab(site: Path, tmp_path: Path,
                                                     anonymised: bool) -> None:
    out = tmp_path / "site"
    privacy = Privacy(key=b"0123456789abcdef-secret") if anonymised else Privacy()
    export_site(load_config(site / "librarian.toml"), out, privacy)
    errors: list[str] = []
    with http_server(out) as url, chromium(tmp_path) as browser:
        page = new_page(browser, errors)
        avery = warning_of(page, url + "/?qos=avery&range=7d")
        other = warning_of(page, url + "/?qos=avery-b&range=7d")
    assert "Alert: avery has been at its GPUs limit for 5.2 h." in avery
    assert "Alert: the collect has failed 3 cycles in a row." in avery
    if anonymised:
        assert "ben" not in avery
        assert "Alert: A member holds more than the alert's share of a limit" in avery
    else:
        assert "Alert: ben holds 70% of avery's GPUs limit while others wait." in avery
    assert "avery has been at its GPUs limit" not in other
    assert "Alert: the collect has failed 3 cycles in a row." in other
    assert not errors, errors
