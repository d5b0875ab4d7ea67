"""Benchmark: `librarian collect --sacct-file F --no-plots` on a million job lines.

Makes (once, cached in bench/out/) a synthetic sacct file: 1,000,000 job lines
for 50 heavy-tailed users over 30 days plus carry-in jobs, typed GPUs, arrays,
pending and running jobs, and .batch/.extern step lines for 5% of the jobs,
in the site's time zone. Then runs, each as its own process, alternately and `--runs` times:
  floor    bench/floor.py: the same file read with Arrow's CSV reader and binned
           with plain numpy (no validation, time zones, TRES rules or output);
  collect  the real command, writing the snapshots.
and prints the median wall time and peak memory (max RSS) of each, and the ratio.

    .venv/bin/python bench/collect_bench.py [--jobs 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
NOW = 1_764_000_000  # 2025-11-24T16:00:00Z
TZ = "America/New_York"

CONFIG = f"""\
[site]
name = "Benchmark"
timezone = "{TZ}"
data_dir = "data"

[collect]
bin_seconds = 3600
window_days = 30

[[qos]]
name = "avery"
limits = {{ cpus = 430, gpus = 39, memory_gb = 3359 }}

[[qos]]
name = "avery-b"
"""


GENERATE = """
import sys
from collector.synth import SynthQos, synth_sacct
text = synth_sacct({now}, 30, {n_jobs}, n_users=50, tz="{tz}", seed=2026, steps=0.05,
                   qos=(SynthQos("avery", 0.8, 0.15), SynthQos("avery-b", 0.2, 0.0)))
open(sys.argv[1], "wb").write(text)
"""


def make_input(n_jobs: int) -> Path:
    """The input file, made once. In a child process: a child's peak RSS starts
    from its parent's at fork, so the measuring process must stay small."""
    path = OUT / f"sacct_{n_jobs}.txt"
    if not path.exists():
        t = time.perf_counter()
        code = GENERATE.format(now=NOW, n_jobs=n_jobs, tz=TZ)
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=HERE.parent)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.1f} s")
    return path


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    OUT.mkdir(exist_ok=True)
    data = make_input(args.jobs)
    site = OUT / "site"
    site.mkdir(exist_ok=True)
    (site / "librarian.toml").write_text(CONFIG)
    librarian = Path(sys.executable).with_name("librarian")
    commands = {
        "floor": [sys.executable, str(HERE / "floor.py"), str(data), str(NOW)],
        "collect": [str(librarian), "collect", "--config", "librarian.toml", "--sacct-file",
                    str(data), "--no-plots", "--now", str(NOW), "-q"],
    }
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
    timed(commands["collect"], site)  # warm the page cache
    for _ in range(args.runs):
        for name, cmd in commands.items():
            results[name].append(timed(cmd, site))
    lines = data.read_bytes().count(b"\n") - 1
    print(f"input: {data.name}, {args.jobs:,} job lines ({lines:,} lines with steps), "
          f"{data.stat().st_size / 1e6:.0f} MB; {args.runs} runs each, medians")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v))
           for k, v in results.items()}
    for name, (wall, rss) in med.items():
        runs = ", ".join(f"{w:.2f}" for w, _ in results[name])
        print(f"  {name:8s} {wall:6.2f} s  peak {rss:6.0f} MiB   (runs: {runs})")
    print(f"  collect / floor = {med['collect'][0] / med['floor'][0]:.2f}x (target <= 2x, "
          f"peak memory target < 1536 MiB)")


if __name__ == "__main__":
    main()
