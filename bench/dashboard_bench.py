"""Benchmark the dashboard: 100 users, 30 days of 1-hour bins, gunicorn with 2 workers.

Measures, on loopback:
  1. initial page load to the four charts drawn, in Debian's Chromium (median of --loads);
  2. a range change as a person sees it: click on a preset to the four charts
     redrawn, in the page (Plotly's plotly_afterplot), per preset;
  3. a range change: the render callback's time as a client sees it (median, p95)
     and the bytes it sends, for each preset;
  4. --clients concurrent clients each asking for --requests range changes
     (closed loop, with and without a think time): p50/p95 latency and errors.
The callback payload is captured from a real range click in the browser and
replayed with other ranges, so the server does exactly what a click costs.

    .venv/bin/python bench/dashboard_bench.py [--users 100] [--clients 50] [--days 365]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collector.collect import collect  # noqa: E402
from collector.config import load_config  # noqa: E402
from collector.synth import SynthQos, synth_sacct  # noqa: E402
from tests.browser import chromium, gunicorn  # noqa: E402

PRESETS = ("6h", "12h", "24h", "3d", "7d", "14d", "30d", "90d", "1y")


def make_site(folder: Path, users: int, days: int = 30) -> Path:
    keep = f"history_days = {days}\n"
    (folder / "librarian.toml").write_text(
        '[site]\nname = "Bench"\ntimezone = "America/New_York"\ndata_dir = "data"\n'
        f'[collect]\nbin_seconds = 3600\nwindow_days = 30\n{keep}'
        '[[qos]]\nname = "avery"\nlimits = { cpus = 4000, gpus = 200, memory_gb = 30000 }\n')
    now = int(time.time())
    history = folder / "history.txt"
    # Enough jobs that nearly every one of the users ran something in most days
    # (400 per user per 30 days), over `days` days (the daily history, for 90d and 1y).
    history.write_bytes(synth_sacct(now, days, 400 * users * days // 30, n_users=users, seed=5,
                                    tz="America/New_York",
                                    qos=(SynthQos("avery", 1.0, 0.2),)))
    collect(load_config(folder / "librarian.toml"), now, sacct_file=history, plots=False)
    return folder / "librarian.toml"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def page_loads(url: str, loads: int, tmp: Path) -> tuple[list[float], dict]:
    drawn = ("() => ['graph-ncpus','graph-ngpus','graph-memory','graph-njobs'].every(id => {"
             " const gd = document.querySelector('#' + id + ' .js-plotly-plot');"
             " return gd && gd.data && gd.data.length > 0 && gd.querySelector('.main-svg'); })")
    times = []
    payload: dict = {}
    with chromium(tmp) as browser:
        page = browser.new_page()
        for i in range(loads):
            t = time.perf_counter()
            page.goto(url + "/?qos=avery&range=7d")
            page.wait_for_function(drawn, timeout=60000, polling=50)
            times.append(time.perf_counter() - t)
            if i == 0:
                with page.expect_request(lambda r: "_dash-update-component" in r.url
                                         and "graph-ncpus.figure" in (r.post_data or "")) as req:
                    page.locator("#range-preset label", has_text="24h").click()
                payload = json.loads(req.value.post_data)
    return times, payload


GRAPH_IDS = ("graph-ncpus", "graph-ngpus", "graph-memory", "graph-njobs")
# In the page: the time of the last click on a preset, and of the fourth chart
# drawn after it (Plotly's plotly_afterplot on each graph).
WATCH = """() => {
    window.__drawn = 0; window.__doneAt = 0; window.__clickAt = 0;
    document.getElementById('range-preset').addEventListener('click', () => {
        window.__clickAt = performance.now(); window.__drawn = 0; window.__doneAt = 0;
    }, true);
    for (const id of GRAPHS) {
        document.querySelector('#' + id + ' .js-plotly-plot').on('plotly_afterplot', () => {
            window.__drawn += 1;
            if (window.__drawn === 4) { window.__doneAt = performance.now(); }
        });
    }
}""".replace("GRAPHS", json.dumps(list(GRAPH_IDS)))


def redraws(url: str, rounds: int, tmp: Path) -> dict[str, list[float]]:
    """A person's range change: click on a preset to the four charts redrawn
    (seconds, measured in the page), `rounds` times per preset."""
    import re

    drawn = ("() => GRAPHS.every(id => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');"
             " return gd && gd.data && gd.data.length > 0; })").replace("GRAPHS", json.dumps(list(GRAPH_IDS)))
    out: dict[str, list[float]] = {p: [] for p in PRESETS}
    with chromium(tmp) as browser:
        page = browser.new_page()
        page.goto(url + "/?qos=avery&range=7d")
        page.wait_for_function(drawn, timeout=60000, polling=50)
        page.wait_for_timeout(500)
        page.evaluate(WATCH)
        current = "7d"
        for _ in range(rounds):
            for preset in PRESETS:
                if preset == current:
                    continue
                page.locator("#range-preset label", has_text=re.compile(f"^{preset}$")).click()
                page.wait_for_function("() => window.__doneAt > 0", timeout=60000, polling="raf")
                out[preset].append(page.evaluate("() => (window.__doneAt - window.__clickAt) / 1000"))
                current = preset
                page.wait_for_timeout(200)
    return out


def with_range(payload: dict, preset: str) -> bytes:
    body = json.loads(json.dumps(payload))
    for item in body["inputs"]:
        if item["id"] == "url" and item["property"] == "search":
            item["value"] = f"?qos=avery&range={preset}"
    return json.dumps(body).encode()


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, int, int]:
    t = time.perf_counter()
    conn.request("POST", "/_dash-update-component", body=body,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    return time.perf_counter() - t, resp.status, len(data)


def single_client(port: int, payload: dict, rounds: int) -> dict[str, tuple[float, float, int]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = {}
    for preset in PRESETS:
        body = with_range(payload, preset)
        samples = []
        size = 0
        for _ in range(rounds):
            seconds, status, size = post(conn, body)
            assert status == 200, status
            samples.append(seconds)
        out[preset] = (statistics.median(samples), pct(samples, 0.95), size)
    conn.close()
    return out


def load(port: int, payload: dict, clients: int, requests: int, think: float) -> dict:
    bodies = [with_range(payload, p) for p in ("6h", "24h", "3d", "7d", "14d")]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(requests):
            try:
                seconds, status, _ = post(conn, rng.choice(bodies))
                with lock:
                    latencies.append(seconds)
                    if status != 200:
                        errors.append(str(status))
            except (OSError, http.client.HTTPException) as err:
                with lock:
                    errors.append(repr(err))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if think:
                time.sleep(rng.uniform(0.5 * think, 1.5 * think))
        conn.close()

    wall = run_clients(clients, client)
    return {"n": len(latencies), "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95),
            "errors": len(errors), "rps": len(latencies) / wall}


def run_clients(clients: int, client) -> float:
    """Run `client(i)` in `clients` threads at once; the wall seconds they took."""
    t = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--loads", type=int, default=5)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--days", type=int, default=30,
                   help="days of history (keep_days when over 30: what 90d and 1y draw)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = make_site(tmp, args.users, args.days)
        snap = json.loads((tmp / "data" / "data_avery.json").read_text())
        history = snap.get("history") or {"users": [], "day_starts": [0]}
        print(f"snapshot: {len(snap['users'])} users x {len(snap['time_idxs'])} bins; history "
              f"{len(history['users'])} users x {len(history['day_starts']) - 1} days")
        with gunicorn(config, workers=args.workers, log=tmp / "gunicorn.log") as url:
            port = int(url.rsplit(":", 1)[1])
            loads, payload = page_loads(url, args.loads, tmp)
            print(f"page load to 4 charts drawn (7d): median {statistics.median(loads):.2f} s "
                  f"(runs: {', '.join(f'{x:.2f}' for x in loads)})")
            print("range change in the browser, click to the four charts redrawn (median, max):")
            for preset, times in redraws(url, max(3, args.loads), tmp).items():
                if times:
                    print(f"  {preset:>4}: median {statistics.median(times) * 1000:6.0f} ms  "
                          f"max {max(times) * 1000:6.0f} ms")
            print("range change, one client (render callback, client-side time on loopback):")
            for preset, (med, p95, size) in single_client(port, payload, args.rounds).items():
                print(f"  {preset:>4}: median {med * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  "
                      f"{size / 1024:7.0f} KiB")
            for think in (1.0, 0.0):
                r = load(port, payload, args.clients, args.requests, think)
                label = f"think time ~{think:g} s" if think else "no think time"
                print(f"{args.clients} clients x {args.requests} range changes, {label}: "
                      f"p50 {r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms, "
                      f"{r['rps']:.1f} req/s, {r['errors']} errors of {r['n']}")


if __name__ == "__main__":
    main()
