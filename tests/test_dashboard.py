"""The dashboard in real headless Chromium, served by gunicorn as in production."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app import ids
from collector.collect import collect
from collector.config import load_config
from collector.status import record_step, write_status
from collector.synth import SynthQos, synth_sacct
from tests.browser import chromium, gunicorn, until

NOW = int(time.time()) - 60
CONFIG = """\
[site]
name = "Test Site"
timezone = "America/New_York"
data_dir = "data"

[collect]
bin_seconds = 3600
window_days = 30

[app]
refresh_seconds = 10
collect_interval_minutes = 10

[alerts]
at_limit_hours = 4

[[qos]]
name = "avery"
limits = { cpus = 430, gpus = 39, memory_gb = 3359 }

[[qos]]
name = "avery-b"
limits = { cpus = 16 }

[[qos]]
name = "empty"

[[qos]]
name = "old"

[[qos]]
name = "broken"
"""


def write_history(site: Path, seed: int, n_users: int = 8) -> Path:
    history = site / f"history-{seed}.txt"
    history.write_bytes(synth_sacct(
        NOW, 30, 3000, n_users=n_users, tz="America/New_York", seed=seed,
        qos=(SynthQos("avery", 0.6, 0.2), SynthQos("avery-b", 0.2, 0.0), SynthQos("old", 0.2))))
    return history


pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    (site / "librarian.toml").write_text(CONFIG)
    config = load_config(site / "librarian.toml")
    history = write_history(site, seed=1)
    collect(config, NOW, qos_names=["avery", "avery-b", "empty"], sacct_file=history, plots=False)
    collect(config, NOW - 3 * 3600, qos_names=["old"], sacct_file=history, plots=False)
    (site / "data" / "data_broken.json").write_text('{"schema_version": 1, "metadata": {"qos": "bro')
    return site


def fail_collect(site: Path, error: str) -> None:
    write_status(site / "data", record_step({"steps": {}}, "collect", False, NOW, 300.0, error))


@pytest.fixture(scope="module")
def server(site: Path) -> str:
    with gunicorn(site / "librarian.toml", log=site / "gunicorn.log") as url:
        yield url


@pytest.fixture
def page(tmp_path: Path, server: str):
    with chromium(tmp_path) as browser:
        page = browser.new_page()
        server_errors: list[str] = []
        elsewhere: list[str] = []
        page.on("response", lambda r: r.status >= 500 and server_errors.append(r.url))
        # Everything the page loads comes from the app itself: no CDN, no fonts service.
        page.on("request", lambda r: r.url.startswith((server, "data:", "blob:"))
                or elsewhere.append(r.url))
        yield page
        assert server_errors == [], "the app answered 500"
        assert elsewhere == [], f"the page loaded from elsewhere: {elsewhere[:5]}"


def wait_drawn(page, search: str | None = None) -> None:
    if search is not None:
        until(page, f"location.search === {search!r}")
    page.wait_for_selector(f"#{ids.graph('NCPUS')} .main-svg")
    until(page, "!document.querySelector('[data-dash-is-loading=\"true\"]')")
    page.wait_for_timeout(300)


def plot(page, obs: str, expression: str):
    """Evaluate `expression` on the Plotly div of one chart (`gd`)."""
    return page.evaluate(
        f"() => {{ const gd = document.querySelector('#{ids.graph(obs)} .js-plotly-plot'); "
        f"return {expression}; }}")


def x_span_hours(page) -> float:
    start, end = plot(page, "NCPUS", "gd.layout.xaxis.range")
    from datetime import datetime
    return (datetime.fromisoformat(end[:19]) - datetime.fromisoformat(start[:19])).total_seconds() / 3600


def legend_users(page) -> list[str]:
    return page.eval_on_selector_all(f"#{ids.LEGEND} .legend-item",
                                     "els => els.map(e => e.getAttribute('data-user'))")


class TestNavigation:
    def test_tabs_switch_and_land_in_the_url(self, page, server: str) -> None:
        page.goto(server + "/")
        wait_drawn(page)
        assert plot(page, "NCPUS", "gd.layout.annotations.map(a => a.text)")[0] == "QoS limit 430"
        page.get_by_role("tab", name="avery-b").click()
        wait_drawn(page, "?qos=avery-b&range=7d")
        until(page,
            f"document.querySelector('#{ids.graph('NCPUS')} .js-plotly-plot').layout.annotations"
            ".some(a => a.text === 'QoS limit 16')")
        assert plot(page, "NGPUS", "gd.layout.shapes.length") == 0  # avery-b has no GPU limit

    def test_presets_and_custom_range(self, page, server: str, site: Path) -> None:
        page.goto(server + "/?qos=avery")
        wait_drawn(page)
        assert x_span_hours(page) == pytest.approx(7 * 24, abs=0.01)
        page.locator(f"#{ids.RANGE} label", has_text="24h").click()
        wait_drawn(page, "?qos=avery&range=24h")
        assert x_span_hours(page) == pytest.approx(24, abs=0.01)
        page.fill(f"#{ids.FROM}", "2020-01-01T00:00")  # clipped to the window's start
        page.fill(f"#{ids.TO}", "2099-01-01T00:00")    # clipped to the collection time
        page.click(f"#{ids.APPLY}")
        until(page, "location.search.includes('range=custom')")
        wait_drawn(page)
        meta = json.loads((site / "data" / "data_avery.json").read_text())["metadata"]
        start, end = plot(page, "NCPUS", "gd.layout.xaxis.range")
        assert start[:16] == meta["window_start"][:16].replace("T", " ")
        assert end[:16] == meta["window_end"][:16].replace("T", " ")
        page.click(f"#{ids.RESET}")
        wait_drawn(page, "?qos=avery&range=7d")
        assert page.input_value(f"#{ids.FROM}") == ""

    def test_a_shared_url_opens_the_same_view(self, page, server: str) -> None:
        page.goto(server + "/?qos=avery-b&range=3d")
        wait_drawn(page)
        assert page.locator(".nav-link.active").inner_text() == "avery-b"
        assert page.is_checked(f"#{ids.RANGE} input[value='3d']")
        assert x_span_hours(page) == pytest.approx(72, abs=0.01)

    def test_back_and_forward(self, page, server: str) -> None:
        page.goto(server + "/?qos=avery&range=7d")
        wait_drawn(page)
        page.get_by_role("tab", name="avery-b").click()
        wait_drawn(page, "?qos=avery-b&range=7d")
        page.locator(f"#{ids.RANGE} label", has_text="12h").click()
        wait_drawn(page, "?qos=avery-b&range=12h")
        page.go_back()
        wait_drawn(page, "?qos=avery-b&range=7d")
        assert page.is_checked(f"#{ids.RANGE} input[value='7d']")
        page.go_back()
        wait_drawn(page, "?qos=avery&range=7d")
        assert page.locator(".nav-link.active").inner_text() == "avery"
        page.go_forward()
        wait_drawn(page, "?qos=avery-b&range=7d")
        assert page.locator(".nav-link.active").inner_text() == "avery-b"


class TestLegendAndTheme:
    def test_hiding_a_user_hides_them_in_all_four_charts(self, page, server: str) -> None:
        page.goto(server + "/?qos=avery&range=30d")
        wait_drawn(page)
        user = legend_users(page)[0]
        page.locator(f"#{ids.LEGEND} .legend-item[data-user='{user}']").click()
        for obs in ("NCPUS", "NGPUS", "MEMORY", "NJOBS"):
            until(page,
                f"document.querySelector('#{ids.graph(obs)} .js-plotly-plot').data"
                f".filter(t => t.name === {user!r}).every(t => t.visible === 'legendonly')")
        visible = plot(page, "NCPUS", "gd.data.filter(t => t.visible === true).length")
        assert visible >= 1  # the others still show
        # A new range keeps the user hidden.
        page.locator(f"#{ids.RANGE} label", has_text="14d").click()
        wait_drawn(page, "?qos=avery&range=14d")
        assert plot(page, "MEMORY", f"gd.data.filter(t => t.name === {user!r})"
                                    ".every(t => t.visible === 'legendonly')")
        assert page.get_attribute(f"#{ids.LEGEND} .legend-item[data-user='{user}']",
                                  "aria-pressed") == "false"
        # Clicking again shows the user everywhere.
        page.locator(f"#{ids.LEGEND} .legend-item[data-user='{user}']").click()
        until(page,
            f"document.querySelector('#{ids.graph('NJOBS')} .js-plotly-plot').data"
            f".filter(t => t.name === {user!r}).every(t => t.visible === true)")

    def test_charts_draw_the_largest_and_fold_the_rest_into_others(
            self, tmp_path: Path, site: Path) -> None:
        # The same data with app.chart_top = 3: three members and "N others".
        config = site / "librarian-top3.toml"
        config.write_text(CONFIG.replace("[app]\n", "[app]\nchart_top = 3\n"))
        drawn_now = ("document.querySelector('#" + ids.graph("NCPUS") + " .js-plotly-plot')"
                     ".data.filter(t => t.meta === 'running').map(t => t.name)")
        names = "() => " + drawn_now
        with gunicorn(config) as url, chromium(tmp_path) as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url + "/?qos=avery&range=30d")
            wait_drawn(page)
            drawn = page.evaluate(names)
            top, others = drawn[:-1], drawn[-1]
            n = int(others.split()[0])
            assert len(top) == 3
            assert others == f"{n} others"
            assert n >= 2
            # The legend lists everyone: the folded members are marked, the row has its entry.
            folded = page.eval_on_selector_all(f"#{ids.LEGEND} .legend-item.folded",
                                               "els => els.map(e => e.getAttribute('data-user'))")
            assert len(folded) == n
            assert not set(folded) & set(top)
            assert page.inner_text(f"#{ids.LEGEND} .legend-others") == others
            # The stacked total is everyone's: the totals table's CPU-hours.
            def chart_cpu_hours() -> float:
                return page.evaluate(
                    "() => { const gd = document.querySelector('#" + ids.graph("NCPUS") +
                    " .js-plotly-plot'); let s = 0; gd._fullData.filter(t => t.meta === 'running')"
                    ".forEach(t => { for (const v of t.y) s += v; }); return s; }")
            before = chart_cpu_hours()
            # Hiding a folded member folds again without them: the row shrinks by one.
            page.locator(f"#{ids.LEGEND} .legend-item[data-user='{folded[0]}']").click()
            until(page, drawn_now + f".includes('{n - 1} others')")
            assert page.evaluate(names)[:-1] == top
            assert chart_cpu_hours() < before
            # Hiding a drawn member gives its place to the largest folded one.
            page.locator(f"#{ids.LEGEND} .legend-item[data-user='{top[0]}']").click()
            until(page, drawn_now + f".includes('{n - 2} others')")
            now = page.evaluate(names)
            assert top[0] not in now
            assert set(top[1:]) < set(now)
            assert now[-1] == f"{n - 2} others"
            promoted = (set(now[:-1]) - set(top)).pop()
            assert promoted in folded
            # Showing both again restores the first drawing.
            page.locator(f"#{ids.LEGEND} .legend-item[data-user='{top[0]}']").click()
            page.locator(f"#{ids.LEGEND} .legend-item[data-user='{folded[0]}']").click()
            until(page, drawn_now + f".includes('{n} others')")
            assert page.evaluate(names) == drawn
            assert chart_cpu_hours() == pytest.approx(before, rel=1e-6)
        assert errors == []

    def test_a_user_keeps_their_colour_across_tabs(self, page, server: str) -> None:
        def colours() -> dict[str, str]:
            return dict(page.eval_on_selector_all(
                f"#{ids.LEGEND} .legend-item",
                "els => els.map(e => [e.getAttribute('data-user'), "
                "e.querySelector('.swatch').style.backgroundColor])"))

        page.goto(server + "/?qos=avery")
        wait_drawn(page)
        on_avery = colours()
        assert len(set(on_avery.values())) == len(on_avery), "two users share a colour"
        page.get_by_role("tab", name="avery-b").click()
        wait_drawn(page, "?qos=avery-b&range=7d")
        on_b = colours()
        shared = set(on_avery) & set(on_b)
        assert shared
        assert all(on_avery[u] == on_b[u] for u in shared)

    def test_dark_mode_survives_a_reload_without_a_white_flash(self, page, server: str) -> None:
        page.goto(server + "/?qos=avery")
        wait_drawn(page)
        assert page.get_attribute("html", "data-bs-theme") == "light"
        page.locator(f"label[for='{ids.THEME_SWITCH}']").click()
        until(page, "document.documentElement.getAttribute('data-bs-theme') === 'dark'")
        until(page,
            f"document.querySelector('#{ids.graph('NCPUS')} .js-plotly-plot')"
            ".layout.paper_bgcolor === '#212529'")
        page.reload(wait_until="domcontentloaded")
        # Before Dash has rendered anything, the page is already dark.
        assert page.get_attribute("html", "data-bs-theme") == "dark"
        wait_drawn(page)
        assert page.is_checked(f"#{ids.THEME_SWITCH}")
        assert plot(page, "NCPUS", "gd.layout.paper_bgcolor") == "#212529"


class TestData:
    def test_tables_have_totals_and_sort_with_the_total_last(self, page, server: str) -> None:
        page.goto(server + "/?qos=avery&range=30d")
        wait_drawn(page)
        table = f"#{ids.TOTAL_TABLE}"
        users = page.eval_on_selector_all(f"{table} tr td[data-column='user']", "els => els.map(e => e.innerText)")
        assert users[-1] == "Total"
        page.locator(f"{table} th[data-column='user']").click()
        users = page.eval_on_selector_all(f"{table} tr td[data-column='user']", "els => els.map(e => e.innerText)")
        assert users[-1] == "Total"
        assert users[:-1] == sorted(users[:-1])

    def test_empty_stale_and_broken_tabs(self, page, server: str, site: Path) -> None:
        page.goto(server + "/?qos=empty")
        wait_drawn(page)
        page.wait_for_selector(f"#{ids.MESSAGE}:has-text('No jobs ran in empty')")
        page.goto(server + "/?qos=old")
        wait_drawn(page)
        page.wait_for_selector(f"#{ids.STALE}:has-text('stale')")
        page.goto(server + "/?qos=broken")
        page.wait_for_selector(f"#{ids.MESSAGE}:has-text('cannot be read')")
        # The other tabs keep working.
        page.get_by_role("tab", name="avery", exact=True).click()
        wait_drawn(page, "?qos=avery&range=7d")
        assert plot(page, "NCPUS", "gd.data.length") > 0
        assert "data_broken.json" in (site / "gunicorn.log").read_text()

    def test_a_failed_collection_is_shown_on_every_tab(self, page, server: str, site: Path) -> None:
        fail_collect(site, "sacct did not answer within 300 s")
        try:
            page.goto(server + "/?qos=avery-b")
            wait_drawn(page)
            page.wait_for_selector(f"#{ids.STALE}:has-text('The last collect failed at')")
            assert "sacct did not answer within 300 s" in page.inner_text(f"#{ids.STALE}")
        finally:
            (site / "data" / "status.json").unlink()

    def test_an_alert_in_force_is_shown_on_its_tab_only(self, page, server: str,
                                                         site: Path) -> None:
        from app import alerts
        state, _ = alerts.step({"alerts": {}}, [alerts.Condition(
            "at_limit|avery|NGPUS", "avery has been at its GPUs limit for 5.2 h", qos="avery")],
            NOW, 60)
        alerts.save_state(site / "data", state)
        try:
            page.goto(server + "/?qos=avery")
            wait_drawn(page)
            page.wait_for_selector(
                f"#{ids.STALE}:has-text('Alert: avery has been at its GPUs limit for 5.2 h.')")
            page.goto(server + "/?qos=avery-b")
            wait_drawn(page)
            # The same callback that writes the alert writes "Updated …": once it has run,
            # the warning line is final.
            page.wait_for_selector(f"#{ids.UPDATED}:has-text('Updated')")
            assert "Alert:" not in page.inner_text("body")
        finally:
            alerts.state_path(site / "data").unlink()

    def test_a_new_snapshot_is_picked_up_on_refresh_keeping_the_view(self, page, server: str,
                                                                  site: Path) -> None:
        page.goto(server + "/?qos=avery&range=14d")
        wait_drawn(page)
        before = set(legend_users(page))
        config = load_config(site / "librarian.toml")
        collect(config, NOW + 30, qos_names=["avery"], sacct_file=write_history(site, seed=2, n_users=30),
                plots=False)
        # refresh_seconds = 10: within two ticks the page shows the new users.
        until(page,
            f"document.querySelectorAll('#{ids.LEGEND} .legend-item').length > {len(before)}",
            timeout=30000)
        assert page.evaluate("location.search") == "?qos=avery&range=14d"
        assert page.is_checked(f"#{ids.RANGE} input[value='14d']")
