"""Production: behind real nginx under a URL prefix, several gunicorn workers
with a real Redis, load while snapshots are replaced, access control, security
headers, path traversal and a hostile user name — with the real parts."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app import ids
from app.export import export_site
from collector.collect import collect
from collector.config import load_config
from collector.synth import SynthQos, synth_sacct
from tests.browser import chromium, gunicorn, until
from tests.web_parts import nginx, redis_keys, redis_server

NOW = int(time.time()) - 60
PREFIX = "/hpg/usage/"
HOSTILE = "<img src=x onerror=alert(1)>"
GRAPHS = ("graph-ncpus", "graph-ngpus", "graph-memory", "graph-njobs")


pytestmark = pytest.mark.production


def make_site(folder: Path, app: str = "", users: int = 6, seed: int = 1,
              prefix: str = PREFIX) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "librarian.toml").write_text(
        '[site]\nname = "Prod Test"\ntimezone = "America/New_York"\ndata_dir = "data"\n'
        "[collect]\nbin_seconds = 3600\nwindow_days = 30\n"
        f'[app]\nrefresh_seconds = 10\nurl_prefix = "{prefix}"\n{app}\n'
        '[[qos]]\nname = "avery"\nlimits = { cpus = 430, gpus = 39, memory_gb = 3359 }\n'
        '[[qos]]\nname = "avery-b"\nlimits = { cpus = 16 }\n')
    write_snapshots(folder, seed, users)
    return folder / "librarian.toml"


def write_snapshots(folder: Path, seed: int, users: int, now: int = NOW,
                    rename: str = "") -> None:
    history = synth_sacct(now, 30, 1500, n_users=users, tz="America/New_York", seed=seed,
                          qos=(SynthQos("avery", 0.7, 0.2), SynthQos("avery-b", 0.3, 0.0)))
    if rename:  # user names of this history all start with `rename`
        lines = history.decode().splitlines()
        header = lines[0].split("|")
        u = header.index("User")
        out = [lines[0]]
        for line in lines[1:]:
            f = line.split("|")
            if f[u]:
                f[u] = rename + f[u]
            out.append("|".join(f))
        history = ("\n".join(out) + "\n").encode()
    path = folder / f"history-{seed}-{rename or 'plain'}.txt"
    path.write_bytes(history)
    collect(load_config(folder / "librarian.toml"), now, sacct_file=path, plots=False)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def raw_get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A request with the path sent exactly as given (no client-side normalising)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def drawn(page) -> None:
    # An empty chart is drawn before the first callback answers: wait for data.
    until(page, "() => " + " && ".join(f"document.querySelector('#{g} .main-svg')"
                                       for g in GRAPHS)
          + f" && document.querySelector('#{ids.LEGEND} .legend-item')"
          + " && document.querySelector('#graph-ncpus .js-plotly-plot').data.length > 0",
          timeout=60000)
    until(page, "!document.querySelector('[data-dash-is-loading=\"true\"]')")


def watch(page, base: str) -> dict[str, list]:
    """Record what a page did: failed responses, requests, CSP violations, errors, dialogs."""
    seen: dict[str, list] = {"failed": [], "requests": [], "console": [], "dialogs": []}
    page.on("response", lambda r: r.status >= 400 and seen["failed"].append((r.status, r.url)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: m.type == "error" and seen["console"].append(m.text))
    page.on("pageerror", lambda e: seen["console"].append(str(e)))

    def on_dialog(d) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));")
    return seen


# --- behind nginx, under a prefix -------------------------------------------------


def test_the_app_under_a_prefix_behind_real_nginx_in_chromium(tmp_path: Path) -> None:
    config = make_site(tmp_path / "site")
    with gunicorn(config, prefix=PREFIX, log=tmp_path / "gunicorn.log") as direct, \
            nginx(tmp_path, direct.removeprefix("http://")) as proxy:
        # Outside the prefix: nothing, from nginx or from the app itself.
        assert get(proxy + "/")[0] == 404
        assert get(direct + "/")[0] == 404
        assert get(direct + "/_dash-layout")[0] == 404
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            seen = watch(page, proxy)
            page.goto(proxy + PREFIX + "?qos=avery&range=7d")
            drawn(page)
            assert page.locator(f"#{ids.LEGEND} .legend-item").count() > 0
            # A range change and a tab change: callbacks through the proxy.
            page.locator(f"#{ids.RANGE} label", has_text="24h").click()
            until(page, "location.search.includes('range=24h')")
            page.get_by_role("tab", name="avery-b").click()
            until(page, "location.search.includes('qos=avery-b')")
            drawn(page)
            assert page.evaluate("location.pathname") == PREFIX
            # The theme switch (a clientside callback: an inline script under the CSP).
            page.locator(f"#{ids.THEME_SWITCH}").check()
            until(page,
                "document.documentElement.getAttribute('data-bs-theme') === 'dark'")
        assert seen["failed"] == []
        assert seen["console"] == [], seen["console"]
        assert seen["requests"]
        outside = [u for u in seen["requests"] if not u.startswith(proxy + PREFIX)]
        assert outside == [], outside[:5]
        access = (tmp_path / "nginx" / "access.log").read_text()
        assert f"POST {PREFIX}_dash-update-component" in access
        assert f"GET {PREFIX}assets/" in access


def test_security_headers_and_no_debug_under_gunicorn(tmp_path: Path) -> None:
    config = make_site(tmp_path / "site")
    env = {"DASH_DEBUG": "true", "FLASK_DEBUG": "1", "DASH_HOT_RELOAD": "true"}
    with gunicorn(config, prefix=PREFIX, env=env) as url:
        status, headers, body = get(url + PREFIX)
        assert status == 200
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self' 'sha256-" in csp
        assert "unsafe-eval" not in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        # Dash's dev tools (error pop-ups with tracebacks, hot reload) are off.
        dash_config = json.loads(body.split(b'id="_dash-config" type="application/json">')[1]
                                 .split(b"</script>")[0])
        assert dash_config.get("ui") is False
        assert "hot_reload" not in dash_config
        assert json.loads(get(url + PREFIX + "_reload-hash")[2])["reloadHash"] is None
        # A broken callback request: an error, no debugger, no traceback.
        req = urllib.request.Request(url + PREFIX + "_dash-update-component", data=b"{not json",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30):
                code, text = 200, b""
        except urllib.error.HTTPError as err:
            with err:
                code, text = err.code, err.read()
        assert code >= 400
        assert b"Traceback" not in text
        assert b"Werkzeug Debugger" not in text


def test_no_file_outside_the_data_folder_is_readable(tmp_path: Path) -> None:
    config = make_site(tmp_path / "site")
    secret = b"root:x:0:0"
    attempts = [
        f"{PREFIX}assets/../../../../../../etc/passwd",
        f"{PREFIX}assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        f"{PREFIX}assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
        f"{PREFIX}assets/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd",
        f"{PREFIX}_dash-component-suites/../../../../etc/passwd",
        f"{PREFIX}_dash-component-suites/dash/..%2f..%2f..%2f..%2fetc%2fpasswd",
        f"{PREFIX}?qos=../../../../etc/passwd",
        f"{PREFIX}?qos=%2F..%2F..%2Fetc%2Fpasswd",
        f"{PREFIX}healthz?qos=../../etc/passwd",
        f"{PREFIX}assets//etc/passwd",
        f"{PREFIX}..%2f..%2fetc/passwd",
        f"{PREFIX}assets/librarian.toml",
        f"{PREFIX}assets/../librarian.toml",
        f"{PREFIX}assets/../data/status.json",
    ]
    with gunicorn(config, prefix=PREFIX) as direct, \
            nginx(tmp_path, direct.removeprefix("http://")) as proxy:
        for base in (direct, proxy):
            for path in attempts:
                status, body = raw_get(base, path)
                assert secret not in body, (base, path)
                assert b"[site]" not in body, (base, path)
                assert status in (200, 400, 404), (base, path, status)
        # The QoS of a callback names a configured tab or nothing: never a path.
        layout_qos = json.loads(get(direct + PREFIX + "_dash-layout")[2])
        assert layout_qos  # the layout is served
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            seen = watch(page, direct)
            page.goto(direct + PREFIX + "?qos=../../../../etc/passwd&range=7d")
            drawn(page)
            assert "root:x:0:0" not in page.content()
            # An unknown name shows the first tab.
            assert page.locator(".nav-link.active").inner_text() == "avery"
        assert [f for f in seen["failed"] if f[0] >= 500] == []


# --- access control -------------------------------------------------------------


PATHS = ("", "assets/librarian.css", "_dash-layout", "_dash-dependencies", "healthz")


def test_header_access_refuses_without_the_header_and_checks_the_lists(tmp_path: Path) -> None:
    config = make_site(tmp_path / "site", app='auth = "header"\nallowed_users = ["alice"]\n'
                                              'allowed_groups = ["root"]')
    with gunicorn(config, prefix=PREFIX, ready_headers={"X-Remote-User": "alice"}) as url:
        for path in PATHS:
            assert get(url + PREFIX + path)[0] == 401, path
            assert get(url + PREFIX + path, {"X-Remote-User": ""})[0] == 401, path
            assert get(url + PREFIX + path, {"X-Remote-User": "alice"})[0] == 200, path
            assert get(url + PREFIX + path, {"X-Remote-User": "root"})[0] == 200, path  # group
            assert get(url + PREFIX + path, {"X-Remote-User": "mallory"})[0] == 403, path
        _status, _, body = get(url + PREFIX)
        assert b"Sign-in required" in body
        # Callbacks too.
        req = urllib.request.Request(url + PREFIX + "_dash-update-component", data=b"{}",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code == 401
        err.value.close()
        # In the browser, with the header the web server would set.
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            page.set_extra_http_headers({"X-Remote-User": "alice"})
            seen = watch(page, url)
            page.goto(url + PREFIX + "?qos=avery&range=7d")
            drawn(page)
        assert seen["failed"] == []


def test_header_access_through_nginx_overwrites_a_forged_header(tmp_path: Path) -> None:
    # nginx sets X-Remote-User from its own authentication ($remote_user, empty
    # here): a client's forged header never reaches the app.
    config = make_site(tmp_path / "site", app='auth = "header"')
    with gunicorn(config, prefix=PREFIX, ready_headers={"X-Remote-User": "x"}) as direct, \
            nginx(tmp_path, direct.removeprefix("http://")) as proxy:
        assert get(direct + PREFIX, {"X-Remote-User": "alice"})[0] == 200
        assert get(proxy + PREFIX, {"X-Remote-User": "alice"})[0] == 401


def test_basic_access_from_a_hashed_password_file(tmp_path: Path) -> None:
    import base64
    import subprocess
    import sys

    passwords = tmp_path / "passwords"
    exe = Path(sys.executable).with_name("librarian")
    for user, password in (("alice", "correct horse"), ("bob", "battery staple")):
        out = subprocess.run([str(exe), "passwd", str(passwords), user, "--password-stdin"],
                             input=password + "\n", capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
    text = passwords.read_text()
    assert "correct horse" not in text
    assert text.startswith("alice:scrypt:")
    assert passwords.stat().st_mode & 0o777 == 0o600
    short = subprocess.run([str(exe), "passwd", str(passwords), "carol", "--password-stdin"],
                           input="short\n", capture_output=True, text=True, check=False)
    assert short.returncode == 2
    assert "at least 8" in short.stderr

    def auth(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    config = make_site(tmp_path / "site", app=f'auth = "basic"\nhtpasswd_file = "{passwords}"\n'
                                              'allowed_users = ["alice"]')
    with gunicorn(config, prefix=PREFIX, ready_headers=auth("alice", "correct horse")) as url:
        for path in PATHS:
            status, headers, _ = get(url + PREFIX + path)
            assert status == 401, path
            assert headers["WWW-Authenticate"].startswith('Basic realm="Prod Test"')
            assert get(url + PREFIX + path, auth("alice", "wrong"))[0] == 401, path
            assert get(url + PREFIX + path, auth("nobody", "correct horse"))[0] == 401, path
            assert get(url + PREFIX + path, auth("alice", "correct horse"))[0] == 200, path
            assert get(url + PREFIX + path, auth("bob", "battery staple"))[0] == 403, path


# --- several workers, Redis, load --------------------------------------------------


def health(url: str, workers: int = 3, limit: int = 600) -> list[dict]:
    """healthz answers, 8 at a time, until `workers` different workers have
    answered (the point of the test) or `limit` requests were made."""
    from concurrent.futures import ThreadPoolExecutor

    answers: list[dict] = []
    with ThreadPoolExecutor(8) as pool:
        while len(answers) < limit:
            answers += pool.map(lambda _: json.loads(get(url + PREFIX + "healthz")[2]),
                                range(40))
            if len({a["worker"] for a in answers}) >= workers:
                break
    return answers


def test_four_workers_with_redis_see_a_new_snapshot_together(tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis_url:
        config = make_site(tmp_path / "site", app=f'cache = "redis"\nredis_url = "{redis_url}"')
        # Two gunicorns on the same data folder and Redis: two hosts on shared storage.
        with gunicorn(config, workers=4, prefix=PREFIX, log=tmp_path / "gunicorn.log") as url, \
                gunicorn(config, workers=2, prefix=PREFIX) as other_host:
            before = health(url)
            assert all(h["ok"] for h in before)
            assert len({h["panels"]["avery"]["version"] for h in before}) == 1
            assert len({h["worker"] for h in before}) >= 3  # the requests reached several workers
            assert redis_keys(redis_url, "librarian:*snapshot:*")  # parsed snapshots are shared
            old_now = before[0]["panels"]["avery"]["now"]
            assert {h["panels"]["avery"]["now"] for h in health(other_host, 2)} == {old_now}
            write_snapshots(tmp_path / "site", seed=2, users=6, now=NOW + 120)
            after = health(url)  # the very next requests of every worker
            assert {h["panels"]["avery"]["now"] for h in after} == {NOW + 120} != {old_now}
            assert len({h["worker"] for h in after}) >= 3
            assert {h["panels"]["avery"]["now"] for h in health(other_host, 2)} == {NOW + 120}


def test_fifty_clients_while_the_collector_replaces_snapshots_every_second(
        tmp_path: Path) -> None:
    site = tmp_path / "site"
    config = make_site(site, users=5)
    # Two histories whose users are told apart by name: a response mixing them is torn.
    write_snapshots(site, seed=3, users=5, rename="a-")
    with gunicorn(config, workers=4, prefix=PREFIX, log=tmp_path / "gunicorn.log") as url:
        # A real render callback request, captured from the browser.
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            page.goto(url + PREFIX + "?qos=avery&range=7d")
            drawn(page)
            with page.expect_request(lambda r: "_dash-update-component" in r.url
                                     and "graph-ncpus.figure" in (r.post_data or "")) as req:
                page.locator(f"#{ids.RANGE} label", has_text="24h").click()
            payload = json.loads(req.value.post_data)

        stop = threading.Event()
        replaced = [0]

        def collector() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                write_snapshots(site, seed=3 + n % 2, users=5, now=NOW + n,
                                rename="a-" if n % 2 else "b-")
                replaced[0] += 1
                time.sleep(1.0)

        results: list[tuple[int, str]] = []
        lock = threading.Lock()
        host, port = url.removeprefix("http://").split(":")

        def client(seed: int) -> None:
            rnd = random.Random(seed)
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:
                body = json.loads(json.dumps(payload))
                for inp in body.get("inputs", []) + body.get("state", []):
                    if inp.get("id") == ids.URL and inp.get("property") == "search":
                        inp["value"] = f"?qos=avery&range={rnd.choice(['6h', '24h', '7d', '30d'])}"
                try:
                    conn.request("POST", PREFIX + "_dash-update-component", json.dumps(body),
                                 {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    verdict = check_response(r.status, data)
                except (OSError, http.client.HTTPException) as err:
                    conn.close()
                    conn = http.client.HTTPConnection(host, int(port), timeout=60)
                    verdict = f"connection: {err}"
                with lock:
                    results.append((seed, verdict))
                time.sleep(rnd.uniform(0.05, 0.3))
            conn.close()

        writer = threading.Thread(target=collector)
        writer.start()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        stop.set()
        writer.join(timeout=60)
    bad = [v for _, v in results if v != "ok"]
    # Enough requests to meet the replacements many times over (how many the
    # machine serves in 12 s is the benchmark's business, not this test's: a
    # busy CI machine served 348 where a quiet one serves over 600).
    assert len(results) > 10 * replaced[0], (len(results), replaced[0])
    assert replaced[0] >= 8
    assert bad == [], bad[:5]


def check_response(status: int, data: bytes) -> str:
    """'ok', or what is wrong: an error, unreadable JSON, or users of two snapshots."""
    if status != 200:
        return f"status {status}"
    try:
        doc = json.loads(data)
    except ValueError:
        return "unreadable JSON"
    names: set[str] = set()
    figures = 0
    for component, out in doc.get("response", {}).items():
        fig = out.get("figure") if isinstance(out, dict) else None
        if isinstance(fig, dict) and component.startswith("graph-"):   # the four usage charts
            figures += 1
            names.update(t.get("name", "") for t in fig.get("data", []))
    if figures != 4:
        return f"{figures} figures"
    prefixes = {n[:2] for n in names if n}
    if len(prefixes) > 1:
        return f"torn: users of two snapshots {sorted(prefixes)}"
    return "ok"


# --- a hostile user name ---------------------------------------------------------


def test_a_hostile_user_name_is_text_in_the_page_and_the_static_export(tmp_path: Path) -> None:
    import subprocess
    import sys

    site = tmp_path / "site"
    config = make_site(site, users=4)
    write_snapshots(site, seed=5, users=4, rename=HOSTILE)
    snap = json.loads((site / "data" / "data_avery.json").read_text())
    assert any(u.startswith(HOSTILE) for u in snap["users"])
    hostile_users = [u for u in snap["users"] if u.startswith(HOSTILE)]
    with gunicorn(config, prefix=PREFIX) as url, chromium(tmp_path) as browser:
        page = browser.new_page()
        seen = watch(page, url)
        page.goto(url + PREFIX + "?qos=avery&range=30d")
        drawn(page)
        legend = page.locator(f"#{ids.LEGEND} .legend-item").all_inner_texts()
        assert any(t.strip() == hostile_users[0] for t in legend), legend
        page.locator(f"#{ids.graph('NCPUS')} .nsewdrag").first.hover()
        page.wait_for_timeout(500)
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert hostile_users[0] in page.inner_text("body")
    assert seen["dialogs"] == []
    assert seen["console"] == []

    out = tmp_path / "export"
    export_site(load_config(config), out)
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1",
                               "--directory", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split("port ")[1].split()[0])
        (tmp_path / "static").mkdir()
        with chromium(tmp_path / "static") as browser:
            page = browser.new_page()
            seen = watch(page, f"http://127.0.0.1:{port}")
            page.goto(f"http://127.0.0.1:{port}/?qos=avery&range=30d")
            page.wait_for_selector("#legend .legend-item")
            page.wait_for_timeout(500)
            assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
            assert hostile_users[0] in page.inner_text("body")
        assert seen["dialogs"] == []
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
