"""Finding one's group among many QoS, and seeing only one's own.

The overview (every QoS, sortable, filterable, each row a link), the picker
with search that replaces the tabs beyond a handful of QoS, the URL naming
the QoS; and the access map: through real nginx (basic sign-in, the user
passed on in X-Remote-User as docs/deploy.md does), a visitor of one group
never gets a name, a number or a file of another, in the page, its
callbacks or its health check, and a request for another group's QoS is 403.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app import ids
from collector.collect import collect
from collector.config import load_config
from collector.synth import SynthQos, synth_sacct
from tests.browser import chromium, gunicorn, until
from tests.web_parts import documented_location, nginx

NOW = int(time.time()) - 60
PREFIX = "/hpg/usage/"


def make_site(folder: Path, n_qos: int, app: str = "") -> Path:
    """`n_qos` QoS grp00, grp01, ... each with its own users (grp00-ana, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"grp{i:02d}" for i in range(n_qos)]
    qos = "".join(f'[[qos]]\nname = "{q}"\nlimits = {{ cpus = {40 + 10 * i}, gpus = 8 }}\n'
                  for i, q in enumerate(names))
    cfg = folder / "librarian.toml"
    cfg.write_text('[site]\nname = "Groups"\ntimezone = "UTC"\ndata_dir = "data"\n'
                   "[collect]\nhistory_days = 0\n"
                   f'[app]\nrefresh_seconds = 10\nurl_prefix = "{PREFIX}"\n{app}\n' + qos)
    lines: list[str] = []
    for i, q in enumerate(names):
        text = synth_sacct(NOW, 30, 200, n_users=4, qos=(SynthQos(q, 1.0, 0.1),), tz="UTC",
                           seed=i, user_prefix=f"{q}-", first_job_id=1000 + i * 10_000)
        part = text.decode().splitlines()
        lines.extend(part[1:] if lines else part)
    (folder / "sacct.txt").write_text("\n".join(lines) + "\n")
    collect(load_config(cfg), NOW, sacct_file=folder / "sacct.txt", plots=False)
    return cfg


def rows(page) -> list[str]:
    return page.eval_on_selector_all(f"#{ids.OVERVIEW_TABLE} tbody tr td:first-child",
                                     "els => els.map(e => e.textContent)")


def shows(page, qos: str, timeout: float = 30000) -> None:
    """Wait until the legend is that QoS's users alone (its users are qos-...)."""
    until(page, "[...document.querySelectorAll('#legend .legend-item')]"
                f".every(e => e.textContent.startsWith('{qos}-'))", timeout=timeout)


def legend(page) -> list[str]:
    return page.eval_on_selector_all(f"#{ids.LEGEND} .legend-item",
                                     "els => els.map(e => e.textContent)")


@pytest.mark.browser
def test_the_overview_and_the_picker_find_a_qos_among_many(tmp_path: Path) -> None:
    cfg = make_site(tmp_path / "site", 12)
    with gunicorn(cfg, prefix=PREFIX) as url, chromium(tmp_path) as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + PREFIX)
        until(page, f"document.querySelectorAll('#{ids.OVERVIEW_TABLE} tbody tr').length === 12",
              timeout=60000)
        # Open on the overview, every QoS in the configuration's order.
        assert page.eval_on_selector("#overview", "e => e.open") is True
        assert rows(page) == [f"grp{i:02d}" for i in range(12)]
        # No tab bar beyond a handful of QoS: the picker.
        assert page.query_selector(".nav-tabs") is None
        until(page, f"document.querySelector('#{ids.LEGEND} .legend-item')", timeout=60000)
        assert all(u.startswith("grp00-") for u in legend(page))

        # Sorted by a column (largest first), then filtered by name.
        header = page.locator(f"#{ids.OVERVIEW_TABLE} th", has_text="CPUs now").first
        header.click()
        limits = page.eval_on_selector_all(
            f"#{ids.OVERVIEW_TABLE} tbody td[data-column='NCPUS_now']",
            "els => els.map(e => Number(e.textContent.replace(/,/g, '')))")
        assert limits == sorted(limits, reverse=True)
        box = page.locator(f"#{ids.OVERVIEW_TABLE} input.table-filter")
        box.fill("GRP1")
        until(page, f"document.querySelectorAll('#{ids.OVERVIEW_TABLE} tbody tr').length === 2")
        assert sorted(rows(page)) == ["grp10", "grp11"]
        box.fill("")
        until(page, f"document.querySelectorAll('#{ids.OVERVIEW_TABLE} tbody tr').length === 12")

        # A row's link opens its view in place, the rest of the view kept: the
        # range chosen after the overview was drawn too (the overview is not
        # redrawn on a range change; the page keeps the view), and the link's
        # address says so before a middle click or a "copy link".
        page.locator(f"#{ids.RANGE} label", has_text="24h").click()
        until(page, "location.search.includes('range=24h')")
        link = page.locator(f"#{ids.OVERVIEW_TABLE} a >> text=grp11")
        # The pointerdown and the read in one step: the tables below the charts
        # are drawn again once the range's details arrive, and a redraw between
        # two steps would give a new link with the server's address.
        href = link.evaluate("a => { a.dispatchEvent(new PointerEvent('pointerdown', "
                             "{bubbles: true})); return a.getAttribute('href'); }")
        assert "qos=grp11" in href
        assert "range=24h" in href
        link.click()
        until(page, "location.search.includes('qos=grp11') && location.search.includes('range=24h')")
        shows(page, "grp11", 30000)
        assert page.inner_text(".qos-picker").strip() == "grp11"

        # The picker's search: type part of a name, take the match.
        page.click(".qos-picker")
        page.fill("input.dash-dropdown-search", "rp05")
        # Take the match once the list has narrowed to it (Enter before the
        # list narrows would take whatever option was first).
        until(page, "[...document.querySelectorAll('.dash-dropdown-option')]"
                    ".map(e => e.textContent.trim()).join() === 'grp05'")
        page.click(".dash-dropdown-option >> text=grp05")
        until(page, "location.search.includes('qos=grp05')")
        shows(page, "grp05", 30000)

        # A bookmark names the QoS and the range.
        page.goto(url + PREFIX + "?qos=grp07&range=24h")
        shows(page, "grp07", 60000)
        assert page.inner_text(".qos-picker").strip() == "grp07"
        assert page.is_checked("#range-preset input[value='24h']")
    assert errors == []


def _request(url: str, user: str = "", password: str = "", data: bytes | None = None
             ) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def _callback(qos_search: str) -> bytes:
    """The render callback's request, as the page sends it, for ?qos=..."""
    return json.dumps({
        "output": "..", "outputs": [], "changedPropIds": [f"{ids.URL}.search"],
        "inputs": [{"id": ids.URL, "property": "search", "value": qos_search},
                   {"id": ids.CHANGED, "property": "data", "value": None}],
        "state": [{"id": ids.HIDDEN, "property": "data", "value": []},
                  {"id": ids.THEME_SWITCH, "property": "value", "value": False}],
    }).encode()


@pytest.mark.production
@pytest.mark.browser
def test_a_visitor_sees_only_their_groups_qos_through_nginx(tmp_path: Path) -> None:
    cfg = make_site(tmp_path / "site", 3, app='auth = "header"\n'
                                              '[app.access]\nalice = ["grp01"]\n'
                                              'carol = ["grp00", "grp02"]\n"@root" = ["*"]\n')
    # nginx's workers run as nobody: the users file goes where nobody can read it.
    readable = Path(tempfile.mkdtemp(prefix="librarian-users-"))
    readable.chmod(0o755)
    users = readable / "users"
    users.write_text("alice:{PLAIN}alice-pw\nbob:{PLAIN}bob-pw\ncarol:{PLAIN}carol-pw\n"
                     "root:{PLAIN}root-pw\n")
    users.chmod(0o644)
    location = documented_location().replace(
        f"location {PREFIX} {{\n",
        f'location {PREFIX} {{\n    auth_basic "Librarian";\n    auth_basic_user_file {users};\n', 1)
    with gunicorn(cfg, prefix=PREFIX, ready_headers={"X-Remote-User": "root"}) as direct, \
            nginx(tmp_path, direct.removeprefix("http://"), location) as proxy:
        site = proxy + PREFIX
        assert _request(site)[0] == 401                               # nginx asks who
        assert _request(site, "alice", "alice-pw")[0] == 200
        assert _request(site + "?qos=grp01", "alice", "alice-pw")[0] == 200
        for other in ("grp00", "grp02", "nope"):
            assert _request(site + f"?qos={other}", "alice", "alice-pw")[0] == 403, other
        assert _request(site, "bob", "bob-pw")[0] == 403             # no QoS for bob
        assert _request(site + "?qos=grp02", "root", "root-pw")[0] == 200   # "@root": all
        # A callback asking for another group's view is refused whole.
        update = site + "_dash-update-component"
        assert _request(update, "alice", "alice-pw", _callback("?qos=grp02"))[0] == 403
        # The health check names the visitor's QoS alone.
        health = json.loads(_request(site + "healthz", "alice", "alice-pw")[1])
        assert list(health["panels"]) == ["grp01"]
        assert sorted(json.loads(_request(site + "healthz", "carol", "carol-pw")[1])["panels"]) \
            == ["grp00", "grp02"]

        # In Chromium as alice: nothing of grp00 or grp02 in any response or on the page.
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            # Her browser's basic sign-in, on every request of the page.
            page.set_extra_http_headers({"Authorization": "Basic " + base64.b64encode(
                b"alice:alice-pw").decode()})
            bodies: list[bytes] = []
            failed: list[tuple[int, str]] = []

            def seen(r) -> None:
                if r.status >= 400:
                    failed.append((r.status, r.url))
                elif "_dash" in r.url or r.url.rstrip("/").endswith(PREFIX.rstrip("/")):
                    bodies.append(r.body())

            page.on("response", seen)
            posted: list[bytes] = []
            page.on("request", lambda r: posted.append(r.post_data_buffer or b"")
                    if "_dash-update-component" in r.url else None)
            page.goto(site)
            until(page, f"document.querySelectorAll('#{ids.OVERVIEW_TABLE} tbody tr').length === 1",
                  timeout=60000)
            until(page, f"document.querySelector('#{ids.LEGEND} .legend-item')", timeout=60000)
            until(page, "!document.querySelector('[data-dash-is-loading=\"true\"]')")
            assert rows(page) == ["grp01"]
            assert all(u.startswith("grp01-") for u in legend(page))
            assert page.eval_on_selector_all(".nav-tabs .nav-link",
                                             "els => els.map(e => e.textContent)") == ["grp01"]
            text = page.inner_text("body")
            html = page.content()
        assert failed == []
        assert bodies
        # Her page's own render request, sent again: answered; with another
        # group's QoS in its URL instead: refused.
        render = next(b for b in posted if b'"search"' in b and ids.LIMIT_ALERT.encode() in b)
        status, body = _request(update, "alice", "alice-pw", render)
        assert status == 200
        assert b"grp01-" in body
        assert _request(update, "alice", "alice-pw",
                        render.replace(b"qos=grp01", b"qos=grp02") if b"qos=grp01" in render
                        else render.replace(b'"value":""', b'"value":"?qos=grp02"', 1))[0] == 403
        for other in ("grp00", "grp02"):
            assert other not in text
            assert other not in html
            for b in bodies:
                assert other.encode() not in b, (other, b[:300])


@pytest.mark.browser
def test_the_static_export_has_the_overview_and_the_picker(tmp_path: Path) -> None:
    from app.export import export_site
    from tests.test_export import http_server

    cfg = make_site(tmp_path / "site", 12)
    site = tmp_path / "static"
    export_site(load_config(cfg), site)
    with http_server(site) as url, chromium(tmp_path) as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + "/")
        until(page, "document.querySelectorAll('#overview-table tbody tr').length === 12",
              timeout=60000)
        assert page.eval_on_selector("#overview", "e => e.open") is True
        assert rows(page) == [f"grp{i:02d}" for i in range(12)]
        assert page.is_hidden("#qos-tabs")
        until(page, "document.querySelector('#legend .legend-item')", timeout=30000)
        assert all(u.startswith("grp00-") for u in legend(page))
        # The same numbers as the Dash page's overview: both come from overview.json.
        page.locator("#overview-table input.table-filter").fill("grp1")
        until(page, "document.querySelectorAll('#overview-table tbody tr').length === 2")
        page.click("#overview-table a >> text=grp10")
        until(page, "location.search.includes('qos=grp10')")
        shows(page, "grp10", 30000)
        assert page.input_value("#qos-picker") == "grp10"
        # The picker: a name typed whole opens it; the range is kept.
        page.click("#range-preset button[data-range='24h']")
        page.fill("#qos-picker", "grp04")
        page.keyboard.press("Enter")
        until(page, "location.search.includes('qos=grp04') && location.search.includes('24h')")
        shows(page, "grp04", 30000)
    assert errors == []
