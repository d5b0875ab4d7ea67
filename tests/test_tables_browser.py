"""The tables and the downloads in real Chromium, on the Dash page (gunicorn)
and the static export alike: one script (assets/tables.js) draws both.

Sorting keeps the total row last; numbers read with thousands separators and
the column's decimals; each table's CSV and JSON hold the rows shown, in the
order shown, unrounded, with units in the headers and a file name that says
site, QoS, range and grouping; a chart's CSV holds its visible series (a
hidden user is left out) and matches the snapshot."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from app.export import export_site
from collector.config import load_config
from collector.demo import run_demo
from collector.snapshot import read_snapshot, snapshot_path
from tests.browser import chromium, gunicorn, new_page, until
from tests.test_export import http_server

pytestmark = pytest.mark.browser
NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables-site")
    run_demo(folder, plots=False, now=time.time() - 60)
    return folder


@contextmanager
def opened(site: Path, tmp_path: Path, which: str) -> Iterator[tuple[object, list[str]]]:
    """A page of the Dash app or of the static export on the demo, and its console errors."""
    errors: list[str] = []
    config = load_config(site / "librarian.toml")
    if which == "dash":
        server = gunicorn(site / "librarian.toml")
    else:
        out = tmp_path / "export"
        export_site(config, out)
        server = http_server(out)
    with server as base, chromium(tmp_path) as browser:
        page = new_page(browser, errors)
        page.goto(base + "/?qos=avery&range=30d")
        until(page, "() => document.querySelectorAll('#total-table tbody tr').length > 2"
                    " && document.querySelector('#graph-ncpus .js-plotly-plot, #graph-ncpus.js-plotly-plot')")
        yield page, errors


def shown(page, table: str) -> dict[str, object]:
    """The table as a person sees it: headers, body rows and the total row (texts)."""
    return page.evaluate("""(id) => {
        const el = document.getElementById(id), text = (n) => n.textContent.trim();
        return {headers: [...el.querySelectorAll('thead th')].map(text),
                columns: [...el.querySelectorAll('thead th')].map(th => th.dataset.column),
                body: [...el.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(text)),
                total: [...el.querySelectorAll('tfoot td')].map(text),
                right: [...el.querySelectorAll('tbody tr:first-child td')].map(td => td.classList.contains('text-end'))};
    }""", table)


def download(page, selector: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.click(selector)
    d = info.value
    return d.suggested_filename, Path(d.path()).read_text()


def number(text: str) -> float:
    return float(text.replace(",", ""))


def decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


@pytest.mark.parametrize("which", ["dash", "static"])
def test_sorting_keeps_the_total_last_and_numbers_read_well(site: Path, tmp_path: Path,
                                                           which: str) -> None:
    with opened(site, tmp_path, which) as (page, errors):
        t = shown(page, "total-table")
        assert t["headers"][:3] == ["User", "CPU-h", "% limit"]   # the file says "CPUs of limit (%)"
        assert t["total"][0] == "Total"
        cpu = t["columns"].index("NCPUS")
        # Busiest first; thousands separated; one decimal in the CPU-h column; right-aligned.
        values = [r[cpu] for r in t["body"]]
        assert all(NUMBER.match(v) for v in values), values
        assert {decimals(v) for v in values} == {1}
        assert any("," in v for v in [*values, t["total"][cpu]])
        assert t["right"][cpu]
        assert not t["right"][0]
        # A click on a number column sorts largest first, again smallest first.
        page.click("#total-table th[data-column='NGPUS']")
        gpu = t["columns"].index("NGPUS")
        after = shown(page, "total-table")
        gpus = [number(r[gpu]) for r in after["body"]]
        assert gpus == sorted(gpus, reverse=True)
        assert after["total"] == t["total"]
        assert "▼" in after["headers"][gpu]
        page.click("#total-table th[data-column='NGPUS']")
        gpus = [number(r[gpu]) for r in shown(page, "total-table")["body"]]
        assert gpus == sorted(gpus)
        page.click("#total-table th[data-column='user']")
        again = shown(page, "total-table")
        users = [r[0] for r in again["body"]]
        assert users == sorted(users, key=str.lower) or users == sorted(users)
        assert again["total"][0] == "Total"
        # The sort survives a redraw (another preset), and the total stays last.
        page.click("#range-preset >> text=7d")
        until(page, "() => location.search.includes('range=7d')")
        page.wait_for_timeout(800)
        users = [r[0] for r in shown(page, "total-table")["body"]]
        assert users == sorted(users, key=str.lower) or users == sorted(users)
    assert not errors, errors


@pytest.mark.parametrize("which", ["dash", "static"])
def test_table_downloads_hold_the_rows_shown_unrounded(site: Path, tmp_path: Path,
                                                      which: str) -> None:
    with opened(site, tmp_path, which) as (page, errors):
        page.click("#total-table th[data-column='MEMORY']")   # a sorted table downloads as shown
        t = shown(page, "total-table")
        name, text = download(page, "#total-table [data-table-download][data-format='csv']")
        assert name == "hipergator_avery_30d_by-user_total.csv"
        rows = list(csv.reader(io.StringIO(text)))
        header, body = rows[0], rows[1:]
        assert header[:4] == ["User", "CPU-h", "CPUs of limit (%)", "GPU-h"]
        assert [r[0] for r in body] == [r[0] for r in t["body"]] + ["Total"]
        for col, head in enumerate(header[1:], start=1):
            for file_row, page_row in zip(body, [*t["body"], t["total"]], strict=True):
                if page_row[col] == "":
                    assert file_row[col] == ""
                    continue
                # The file's number, rounded to the page's decimals, is the page's text.
                places = decimals(page_row[col])
                # The page shows the file's value rounded to its places (a value
                # within a bit of a tie may round either way: the browser's
                # x * 10^places, Python's exact decimal).
                on_page = float(page_row[col].replace(",", ""))
                assert abs(float(file_row[col]) - on_page) <= 0.5 * 10 ** -places + 1e-9, \
                    (head, file_row[0], file_row[col], page_row[col])
        assert any(len(v.split(".")[-1]) > 2 for r in body for v in r[1:] if "." in v)  # unrounded

        name, text = download(page, "#total-table [data-table-download][data-format='json']")
        assert name == "hipergator_avery_30d_by-user_total.json"
        doc = json.loads(text)
        assert [c["id"] for c in doc["columns"]] == t["columns"]
        assert {"id": "MEMORY", "header": "Mem GB-h", "unit": ""} in doc["columns"]
        assert [r["user"] for r in doc["rows"]] == [r[0] for r in t["body"]]
        assert doc["total"]["user"] == "Total"
        assert doc["total"]["NCPUS"] == pytest.approx(sum(r["NCPUS"] for r in doc["rows"]))

        # Durations: words on the page, hours in the file.
        waits = shown(page, "wait-table")
        _, text = download(page, "#wait-table [data-table-download][data-format='csv']")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:4] == ["User", "Jobs started", "Median wait (h)", "90th pct wait (h)"]
        assert re.search(r"\d+ (s|min|h|d)", waits["body"][0][2])
        assert float(rows[1][2]) >= 0
        # Efficiency flags: badges on the page, words joined in the file.
        _, text = download(page, "#efficiency-table [data-table-download][data-format='csv']")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][-1] == "Worth a look"
        assert rows[0][3] == "CPU (%)"
    assert not errors, errors


@pytest.mark.parametrize("which", ["dash", "static"])
def test_chart_downloads_are_the_visible_series(site: Path, tmp_path: Path, which: str) -> None:
    snap = read_snapshot(snapshot_path(load_config(site / "librarian.toml").site.data_dir, "avery"))
    with opened(site, tmp_path, which) as (page, errors):
        name, text = download(page, "[data-chart-download='graph-ncpus'][data-format='csv']")
        assert name == "hipergator_avery_30d_by-user_chart-ncpus.csv"
        rows = list(csv.reader(io.StringIO(text)))
        header, body = rows[0], rows[1:]
        assert header[0] == "Bin start (site time)"
        held = {h.removesuffix(" held (CPUs)"): i for i, h in enumerate(header) if h.endswith(" held (CPUs)")}
        used = [h for h in header if h.endswith(" used (CPUs)")]
        assert held
        assert used   # the demo's jobs have steps: the used shade is a series too
        # The 30-day view is the whole window: one row per bin, and each user's
        # column is the snapshot's series (single precision, 7 digits).
        assert len(body) == snap.n_bins
        # The Dash page draws the largest 20 and "N others" (app.chart_top):
        # that column is the sum of every user not drawn.
        others = [u for u in held if u.endswith(" others")]
        assert len(others) == (1 if which == "dash" and len(snap.users) > 21 else 0)
        for user, col in held.items():
            values = np.array([float(r[col]) if r[col] else 0.0 for r in body])
            if user in others:
                rest = [i for i, u in enumerate(snap.users) if u not in held]
                assert len(rest) == int(user.split()[0])
                expected = snap.series["NCPUS"][rest].sum(axis=0)
            else:
                expected = snap.series["NCPUS"][snap.users.index(user)]
            assert values == pytest.approx(expected, rel=1e-5, abs=1e-4), user
        # A hidden user is not a visible series (on a folded chart the page
        # asks the server for a new drawing: wait until it is drawn without).
        first = page.get_attribute("#legend .legend-item:not(.folded)", "data-user")
        assert first in held
        page.click(f"#legend .legend-item[data-user='{first}']")
        until(page, "() => { const el = document.getElementById('graph-ncpus');"
                    " const gd = el.querySelector('.js-plotly-plot') || el;"
                    f" return gd.data.every(t => t.name !== {first!r} || t.visible !== true); }}")
        page.wait_for_timeout(300)
        _, text = download(page, "[data-chart-download='graph-ncpus'][data-format='json']")
        doc = json.loads(text)
        assert doc["unit"] == "CPUs"
        names = {(s["name"], s["kind"]) for s in doc["series"]}
        assert (first, "held") not in names
        # The others still drawn (on the Dash page, the row has one fewer).
        assert {u for u in held if u != first and u not in others} <= \
            {n for n, k in names if k == "held"}
        assert len(doc["bin_starts"]) == snap.n_bins
        # The Queued view's file holds queued series only.
        page.click("#show-mode >> text=Queued")
        until(page, "() => location.search.includes('show=queued')")
        page.wait_for_timeout(800)
        _, text = download(page, "[data-chart-download='graph-ncpus'][data-format='json']")
        kinds = {s["kind"] for s in json.loads(text)["series"]}
        assert kinds <= {"queued"}
    assert not errors, errors


@pytest.mark.parametrize("which", ["dash", "static"])
def test_a_year_is_drawn_in_days_from_the_history(site: Path, tmp_path: Path, which: str) -> None:
    snap = read_snapshot(snapshot_path(load_config(site / "librarian.toml").site.data_dir, "avery"))
    h = snap.history
    assert h is not None
    with opened(site, tmp_path, which) as (page, errors):
        page.click("#range-preset >> text=1y")
        until(page, "() => location.search.includes('range=1y')")
        until(page, "() => { const el = document.getElementById('graph-ncpus');"
                    " const gd = el.querySelector('.js-plotly-plot') || el;"
                    " return gd.layout.title.text.includes('daily average'); }")
        assert "daily averages" in page.inner_text("#daily-note")
        _, text = download(page, "[data-chart-download='graph-ncpus'][data-format='csv']")
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) - 1 == h.n_days            # one row per local day of the history
        assert rows[1][0] == h.first.isoformat() + " 00:00"
        # The total table sums the history's days: CPU-hours per user as the snapshot has them.
        t = shown(page, "total-table")
        cpu = t["columns"].index("NCPUS")
        expected = h.seconds[0].sum() / 3600
        assert number(t["total"][cpu]) == pytest.approx(expected, rel=1e-3)
        # Back inside the window: hourly again, and no note.
        page.click("#range-preset >> text=7d")
        until(page, "() => location.search.includes('range=7d')")
        until(page, "() => { const el = document.getElementById('graph-ncpus');"
                    " const gd = el.querySelector('.js-plotly-plot') || el;"
                    " return !gd.layout.title.text.includes('daily average'); }")
        assert page.inner_text("#daily-note").strip() == ""
    assert not errors, errors


@pytest.mark.parametrize("which", ["dash", "static"])
def test_grouping_by_account_and_partition_is_chosen_on_the_page_and_kept_in_the_url(
        site: Path, tmp_path: Path, which: str) -> None:
    """By account, then by partition: the charts stack the snapshot's groups
    (a chart's file holds their series), the usage tables sum per group
    under its own header, the totals stay the users' totals, the files say
    the grouping, and the URL keeps it (a reload opens grouped)."""
    snap = read_snapshot(snapshot_path(load_config(site / "librarian.toml").site.data_dir, "avery"))
    with opened(site, tmp_path, which) as (page, errors):
        by_user = shown(page, "total-table")
        cpu = by_user["columns"].index("NCPUS")
        for by, label in (("account", "Account"), ("partition", "Partition")):
            names = snap.groups[by].names
            assert len(names) >= 2, names
            page.click(f"#group-by >> text=By {by}")
            until(page, f"() => location.search.includes('group={by}')")
            until(page, f"() => document.querySelector('#total-table thead th').textContent"
                        f".includes('{label}')")
            legend = page.eval_on_selector_all("#legend .legend-item",
                                               "els => els.map(e => e.dataset.user)")
            assert set(legend) == set(names)
            t = shown(page, "total-table")
            assert {r[0] for r in t["body"]} <= set(names)
            assert t["total"][cpu] == by_user["total"][cpu]            # the same CPU-hours
            current = shown(page, "current-table")
            assert current["headers"][0] == label
            name, text = download(page, "#total-table [data-table-download][data-format='csv']")
            assert name == f"hipergator_avery_30d_by-{by}_total.csv"
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0][0] == label
            name, text = download(page, "[data-chart-download='graph-ncpus'][data-format='csv']")
            assert name == f"hipergator_avery_30d_by-{by}_chart-ncpus.csv"
            header, body = (lambda r: (r[0], r[1:]))(list(csv.reader(io.StringIO(text))))
            held = {h.removesuffix(" held (CPUs)"): i for i, h in enumerate(header)
                    if h.endswith(" held (CPUs)")}
            assert set(held) <= set(names)
            g = snap.groups[by]
            for group, col in held.items():
                values = np.array([float(r[col]) if r[col] else 0.0 for r in body])
                assert values == pytest.approx(g.series["NCPUS"][g.names.index(group)],
                                               rel=1e-5, abs=1e-4), group
        # The URL keeps the grouping: a reload opens by partition.
        page.reload()
        until(page, "() => document.querySelectorAll('#total-table tbody tr').length > 0"
                    " && document.querySelector('#total-table thead th').textContent"
                    ".includes('Partition')")
        assert set(page.eval_on_selector_all("#legend .legend-item",
                                             "els => els.map(e => e.dataset.user)")) == \
            set(snap.groups["partition"].names)
        # Back to users.
        page.click("#group-by >> text=By user")
        until(page, "() => !location.search.includes('group=')")
        until(page, "() => document.querySelector('#total-table thead th').textContent"
                    ".includes('User')")
    assert not errors, errors
