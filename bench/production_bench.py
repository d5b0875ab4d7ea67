"""Benchmark: the dashboard under load at 1, 4 and 8 gunicorn workers, with the
simple (per-worker) cache and with Redis shared by the workers.

The site: 100 users, 30 days of 1-hour bins, served under /hpg/usage/. For each
(workers, cache), `--clients` closed-loop clients on loopback run for
`--seconds` each on:
  page          GET the page (index) and its layout (_dash-layout): the server's
                part of opening the dashboard (static assets left out: the web
                server in front serves and caches them);
  range change  the render callback of a range click (captured once from
                Chromium, replayed with the presets 6h..14d).
Prints requests per second and p50/p95 latency, and errors.

    .venv/bin/python bench/production_bench.py [--clients 32] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.dashboard_bench import make_site, pct, run_clients  # noqa: E402
from tests.browser import chromium, gunicorn, until  # noqa: E402
from tests.web_parts import redis_server  # noqa: E402

PREFIX = "/hpg/usage/"
PRESETS = ("6h", "24h", "3d", "7d", "14d")


def capture_payload(url: str, tmp: Path) -> dict:
    with chromium(tmp) as browser:
        page = browser.new_page()
        page.goto(url + PREFIX + "?qos=avery&range=7d")
        until(page, "document.querySelector('#graph-ncpus .js-plotly-plot') && "
                    "document.querySelector('#graph-ncpus .js-plotly-plot').data.length > 0",
              timeout=60000)
        with page.expect_request(lambda r: "_dash-update-component" in r.url
                                 and "graph-ncpus.figure" in (r.post_data or "")) as req:
            page.locator("#range-preset label", has_text="24h").click()
        return json.loads(req.value.post_data)


def bodies(payload: dict) -> list[bytes]:
    out = []
    for preset in PRESETS:
        body = json.loads(json.dumps(payload))
        for item in body["inputs"]:
            if item["id"] == "url" and item["property"] == "search":
                item["value"] = f"?qos=avery&range={preset}"
        out.append(json.dumps(body).encode())
    return out


def run(port: int, clients: int, seconds: float, kind: str, posts: list[bytes]) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(conn: http.client.HTTPConnection, rng: random.Random) -> int:
        if kind == "page":
            conn.request("GET", PREFIX + "?qos=avery&range=7d")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                return r.status
            conn.request("GET", PREFIX + "_dash-layout")
        else:
            conn.request("POST", PREFIX + "_dash-update-component", body=rng.choice(posts),
                         headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                status = one(conn, rng)
            except (OSError, http.client.HTTPException) as err:
                status = repr(err)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                latencies.append(time.perf_counter() - t)
                if status != 200:
                    errors.append(str(status))
        conn.close()

    wall = run_clients(clients, client)
    return {"rps": len(latencies) / wall, "p50": pct(latencies, 0.5),
            "p95": pct(latencies, 0.95), "n": len(latencies), "errors": len(errors)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = make_site(tmp, args.users)
        base = config.read_text()
        with redis_server(tmp) as redis_url:
            caches = {"simple": "", "redis": f'cache = "redis"\nredis_url = "{redis_url}"\n'}
            payload: dict | None = None
            print(f"{args.clients} clients, {args.seconds:g} s each, loopback, "
                  f"{args.users} users x 720 bins")
            print(f"{'workers':>7} {'cache':>6} | {'page req/s':>10} {'p50':>7} {'p95':>7} | "
                  f"{'range req/s':>11} {'p50':>7} {'p95':>7} | errors")
            for workers in args.workers:
                for cache, extra in caches.items():
                    config.write_text(base.replace(
                        "[[qos]]", f'[app]\nurl_prefix = "{PREFIX}"\n{extra}\n[[qos]]', 1))
                    with gunicorn(config, workers=workers, prefix=PREFIX,
                                  log=tmp / "gunicorn.log") as url:
                        if payload is None:
                            payload = capture_payload(url, tmp)
                        port = int(url.rsplit(":", 1)[1])
                        page = run(port, args.clients, args.seconds, "page", [])
                        rng = run(port, args.clients, args.seconds, "range", bodies(payload))
                    print(f"{workers:>7} {cache:>6} | {page['rps']:>10.1f} "
                          f"{page['p50'] * 1000:>5.0f}ms {page['p95'] * 1000:>5.0f}ms | "
                          f"{rng['rps']:>11.1f} {rng['p50'] * 1000:>5.0f}ms "
                          f"{rng['p95'] * 1000:>5.0f}ms | {page['errors'] + rng['errors']}",
                          flush=True)


if __name__ == "__main__":
    main()
