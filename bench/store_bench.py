"""Benchmark: one incremental cycle on a job store of 1,000,000 jobs, binning included.

Makes (once, cached in bench/out/) a synthetic 30-day sacct history of
`--jobs` job lines in UTC (as live sacct prints them), fills a job store from
it as if the last cycle ran 10 minutes ago, and writes what sacct answers to
the next incremental query (the jobs active in the last 10 minutes plus the
60-minute overlap: running, pending and recently ended jobs).

Then measures, `--runs` times, medians:
  usual    `librarian collect --no-plots` as its own process (interpreter start
           and imports included), with a fake sacct on PATH printing that answer
           and a fake squeue printing the history's pending jobs;
  in-proc  the same `collect()` call in a warm process;
  daily    the day's first cycle: a store whose frozen boundary is about to
           move, so a day of records goes to a new cold segment and is summed.
It also prints the rows asked of slurmdbd per day: incremental (144 cycles of
the answer above) against re-querying the whole window every 10 minutes.

    .venv/bin/python bench/store_bench.py [--jobs 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUT = HERE / "out"
NOW = 1_764_000_000  # 2025-11-24T16:00:00Z
LAST = NOW - 600
OVERLAP = 3600

CONFIG = """\
[site]
name = "Benchmark"
timezone = "America/New_York"
data_dir = "data"

[collect]
bin_seconds = 3600
window_days = 30
history_days = 0      # the usual cycle; the fake sacct would answer older days alike
overlap_minutes = 60

[[qos]]
name = "avery"
limits = { cpus = 430, gpus = 39, memory_gb = 3359 }

[[qos]]
name = "avery-b"
limits = { cpus = 3870, gpus = 0, memory_gb = 30234 }
"""

GENERATE = """
import sys
from collector.synth import SynthQos, synth_sacct
text = synth_sacct({now}, 30, {n_jobs}, n_users=50, tz="UTC", seed=2026, steps=0.0,
                   qos=(SynthQos("avery", 0.8, 0.15), SynthQos("avery-b", 0.2, 0.0)))
open(sys.argv[1], "wb").write(text)
"""


def make_history(n_jobs: int) -> Path:
    path = OUT / f"sacct_utc_{n_jobs}.txt"
    if not path.exists():
        code = GENERATE.format(now=NOW, n_jobs=n_jobs)
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=HERE.parent)
    return path


def answer_of(history: Path) -> Path:
    """The lines sacct prints for [LAST - OVERLAP, NOW]: not ended, or ended since."""
    path = history.with_name(history.stem + "_incremental.txt")
    if path.exists():
        return path
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(LAST - OVERLAP))
    lines = history.read_bytes().decode().splitlines()
    header = lines[0].split("|")
    end_i = header.index("End")
    keep = [lines[0]] + [ln for ln in lines[1:]
                         if (e := ln.split("|")[end_i]) in ("Unknown", "None", "") or e >= since]
    path.write_text("\n".join(keep) + "\n")
    return path


def fill_store(site: Path, history: Path, boundary_from: int = LAST) -> tuple[int, int]:
    """A store as the last cycle (10 minutes ago) left it; with an earlier
    `boundary_from`, one whose frozen boundary is about to move (the day's
    first cycle after midnight + overlap). Returns (records, hot records)."""
    from collector.binning import make_window
    from collector.config import load_config
    from collector.parse import JobTable, parse_sacct
    from collector.store import (
        Store,
        StoreState,
        cold_segments,
        cold_sums,
        fingerprint,
        frozen_boundary,
        save_cold_sums,
        save_store,
        segments_fingerprint,
        store_folder,
        update,
    )

    config = load_config(site / "librarian.toml")
    shutil.rmtree(site / "data", ignore_errors=True)
    jobs = parse_sacct(history.read_bytes()).jobs
    c = config.collect
    keep_from = make_window(LAST, c.bin_seconds, c.n_bins).start
    boundary = frozen_boundary(boundary_from, c.overlap_minutes * 60)
    up = update(JobTable.empty(), JobTable.empty(), jobs, boundary, keep_from)
    fp = fingerprint(config.site.clusters, [q.name for q in config.qos])
    folder = store_folder(config.site.data_dir)
    state = save_store(folder, Store(cold={"": up.cold}, hot={"": up.hot},
                                     state=StoreState(fp, LAST, LAST - 86400)))
    save_cold_sums(folder, cold_sums({"": up.cold}, segments_fingerprint(state),
                                     cold_segments(state)[0], c.bin_seconds, keep_from, boundary))
    return len(up.cold) + len(up.hot), len(up.hot)


def fake_sacct(folder: Path, answer: Path, queue: Path) -> Path:
    """sacct printing the answer, squeue printing the pending jobs (the cycle reads both)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("sacct", answer), ("squeue", queue)):
        script = folder / name
        script.write_text(f"#!/bin/sh\nexec cat {text}\n")
        script.chmod(0o755)
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=1_400_000,
                   help="job lines in the 30-day history (with carry-in; the default fills the store with ~1M jobs)")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    OUT.mkdir(exist_ok=True)
    history = make_history(args.jobs)
    answer = answer_of(history)
    site = OUT / "store-site"
    site.mkdir(exist_ok=True)
    (site / "librarian.toml").write_text(CONFIG)
    records, hot_rows = fill_store(site, history)
    answer_rows = answer.read_bytes().count(b"\n") - 1
    store_bytes = sum(p.stat().st_size for p in (site / "data" / "store").glob("*.arrow"))
    print(f"store: {records:,} jobs ({store_bytes / 1e6:.0f} MB; {hot_rows:,} in the hot "
          f"part); incremental answer: {answer_rows:,} rows")

    from collector.synth import synth_squeue

    queue = OUT / "squeue-now.txt"
    queue.write_bytes(synth_squeue(history.read_bytes()))
    pending_lines = queue.read_bytes().count(b"\n")
    print(f"squeue: {pending_lines:,} pending jobs")
    env = {**os.environ,
           "PATH": f"{fake_sacct(OUT / 'fake-bin', answer, queue)}:{os.environ['PATH']}"}
    librarian = Path(sys.executable).with_name("librarian")
    cmd = [str(librarian), "collect", "--config", "librarian.toml", "--no-plots",
           "--now", str(NOW), "-q"]

    def run_cycle() -> float:
        t = time.perf_counter()
        subprocess.run(cmd, cwd=site, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    run_cycle()  # warm the page cache
    typical = [run_cycle() for _ in range(args.runs)]

    from collector.collect import collect
    from collector.config import load_config

    config = load_config(site / "librarian.toml")
    data, pending = answer.read_bytes(), queue.read_bytes()

    def runner(a, **_):
        return subprocess.CompletedProcess(a, 0, pending if a[0].endswith("squeue") else data, b"")

    inproc = []
    for _ in range(args.runs):
        t = time.perf_counter()
        report = collect(config, NOW, plots=False, runner=runner)
        inproc.append(time.perf_counter() - t)
        assert report.sync is not None
        assert not report.sync.full

    daily = []
    for _ in range(args.runs):
        fill_store(site, history, boundary_from=LAST - 86400)
        daily.append(run_cycle())
        status = json.loads((site / "data" / "status.json").read_text())["sacct"]["last"]
        assert status["cold_rewritten"], status  # the day's records moved to a new segment

    med = statistics.median
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    print(f"usual cycle (own process)      {med(typical):.2f} s  (runs: {fmt(typical)})"
          "   target < 1 s")
    print(f"usual cycle, collect() in a warm process  {med(inproc):.2f} s  (runs: {fmt(inproc)})")
    print(f"the day's first cycle: a day of records moved to a new cold segment and "
          f"summed (own process) {med(daily):.2f} s  (runs: {fmt(daily)})")
    full_rows = records  # a full re-query returns every job of the window
    print(f"rows asked of slurmdbd per day at 10-minute cycles: incremental "
          f"{144 * answer_rows:,} vs full re-query {144 * full_rows:,} "
          f"({full_rows / answer_rows:.0f}x fewer)")
    # What jobs used: each job that ended is asked once, by id: its allocation
    # line and its steps (a batch job has .batch and .extern; srun adds more).
    from collector.parse import parse_sacct

    jobs = parse_sacct(history.read_bytes()).jobs
    ended = int(((jobs.end > NOW - 86400) & (jobs.end <= NOW) & ~np.isnan(jobs.start)).sum())
    for steps in (2, 3):
        usage = ended * (1 + steps)
        print(f"  + the usage queries: {ended:,} jobs ended in the last day x (1 + {steps} "
              f"steps) = {usage:,} rows: {(144 * answer_rows + usage) / (144 * answer_rows):.2f}x "
              f"the rows asked without them (target <= 1.3x)")


if __name__ == "__main__":
    main()
