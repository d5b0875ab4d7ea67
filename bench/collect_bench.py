"""Benchmark: `librarian collect --sacct-file F --no-plots` on a million job lines.

Makes (once, cached in bench/out/) a synthetic sacct file: 1,000,000 job lines
for 50 heavy-tailed users over 30 days plus carry-in jobs, typed GPUs, arrays,
pending and running jobs, and .batch/.extern step lines for 5% of the jobs,
in the site's time zone. Then runs, each as its own process, alternately and `--runs` times:
  floor    bench/floor.py: the same file read with Arrow's CSV reader and binned
           with plain numpy (no validation, time zones, TRES rules or output);
  collect  the real command, writing the snapshots;
  usage    (with --usage) the real command on the same history with what the
           jobs used on their step lines (TotalCPU, MaxRSS, TRESUsageIn*: the
           efficiency fields), `--steps` of the jobs having steps;
  noqueue  (with --queue) the real command on the same history without queued
           demand: no pending jobs' lines, no Eligible, ReqCPUS, Reason and
           TimelimitRaw fields, and every job submitted when it started (no
           wait to bin): the queue issue's "its time without queued demand",
           measured on today's code;
  baseline (with --baseline DIR) the collect of another checkout of the code
           (`git worktree add DIR REV`), run with PYTHONPATH=DIR, on the file
           without usage: "today's" collect, to compare a change against;
and prints the median wall time and peak memory (max RSS) of each, and the ratios.

    .venv/bin/python bench/collect_bench.py [--jobs 1000000] [--runs 5]
        [--usage] [--queue] [--steps 0.05] [--baseline /tmp/old]
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
history_days = 0      # the window: the same work as the baselines measured before

[[qos]]
name = "avery"
limits = {{ cpus = 430, gpus = 39, memory_gb = 3359 }}

[[qos]]
name = "avery-b"
"""


GENERATE = """
import sys
from collector.synth import SynthQos, synth_sacct
text = synth_sacct({now}, 30, {n_jobs}, n_users=50, tz="{tz}", seed=2026, steps={steps},
                   qos=(SynthQos("avery", 0.8, 0.15), SynthQos("avery-b", 0.2, 0.0)),
                   usage={usage})
open(sys.argv[1], "wb").write(text)
"""


def make_input(n_jobs: int, steps: float = 0.05, usage: bool = False) -> Path:
    """The input file, made once. In a child process: a child's peak RSS starts
    from its parent's at fork, so the measuring process must stay small."""
    name = f"sacct_{n_jobs}" + ("" if steps == 0.05 else f"_steps{steps:g}") + \
        ("_usage" if usage else "")
    path = OUT / f"{name}.txt"
    if not path.exists():
        t = time.perf_counter()
        code = GENERATE.format(now=NOW, n_jobs=n_jobs, tz=TZ, steps=steps, usage=usage)
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=HERE.parent)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.1f} s")
    return path


QUEUE_FIELDS = (b"Eligible", b"ReqCPUS", b"Reason", b"TimelimitRaw")


def without_queue(path: Path) -> Path:
    """`path` without the pending jobs' lines, the queue's fields and any wait
    (Submit := Start), made once."""
    out = path.with_name(path.stem + "_noqueue.txt")
    if out.exists():
        return out
    with path.open("rb") as src, out.open("wb") as dst:
        header = src.readline().rstrip(b"\n").split(b"|")
        drop = {header.index(f) for f in QUEUE_FIELDS}
        state, submit, start = (header.index(f) for f in (b"State", b"Submit", b"Start"))
        keep = [i for i in range(len(header)) if i not in drop]
        dst.write(b"|".join(header[i] for i in keep) + b"\n")
        for line in src:
            fields = line.rstrip(b"\n").split(b"|")
            if fields[state] != b"PENDING":
                if fields[start][:1].isdigit():
                    fields[submit] = fields[start]
                dst.write(b"|".join(fields[i] for i in keep) + b"\n")
    return out


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None
          ) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and user CPU seconds of one child process
    (user time is the steadier measure on a shared machine: the wall time's
    spread is mostly system time, page faults stalling on huge-page compaction)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--usage", action="store_true", help="also collect the history with step usage")
    p.add_argument("--queue", action="store_true",
                   help="also collect the history without the queue's lines and fields")
    p.add_argument("--steps", type=float, default=0.05, help="share of the jobs with step lines")
    p.add_argument("--baseline", type=Path, help="a checkout of the code to compare against")
    args = p.parse_args()
    OUT.mkdir(exist_ok=True)
    data = make_input(args.jobs, args.steps)
    site = OUT / "site"
    site.mkdir(exist_ok=True)
    (site / "librarian.toml").write_text(CONFIG)
    librarian = Path(sys.executable).with_name("librarian")

    def collect(path: Path, *python: str) -> list[str]:
        return [*python, "collect", "--config", "librarian.toml", "--sacct-file",
                str(path), "--no-plots", "--now", str(NOW), "-q"]

    commands = {
        "floor": [sys.executable, str(HERE / "floor.py"), str(data), str(NOW)],
        "collect": collect(data, str(librarian)),
    }
    envs: dict[str, dict[str, str] | None] = dict.fromkeys(commands)
    if args.usage:
        with_usage = make_input(args.jobs, args.steps, usage=True)
        commands["usage"] = collect(with_usage, str(librarian))
        envs["usage"] = None
    if args.queue:
        commands["noqueue"] = collect(without_queue(data), str(librarian))
        envs["noqueue"] = None
    if args.baseline:
        # In its own site, its config without the keys added since the oldest
        # baselines compared (history_days: their collect read the window only,
        # the same work as history_days = 0 here).
        old_site = OUT / "site-baseline"
        old_site.mkdir(exist_ok=True)
        (old_site / "librarian.toml").write_text(
            "".join(line for line in CONFIG.splitlines(keepends=True)
                    if not line.startswith("history_days")))
        commands["baseline"] = collect(data, sys.executable, "-m", "collector")
        envs["baseline"] = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in commands}
    cwd = {name: OUT / "site-baseline" if name == "baseline" else site for name in commands}
    for name, cmd in commands.items():
        timed(cmd, cwd[name], envs[name])  # warm the page cache
    for _ in range(args.runs):
        for name, cmd in commands.items():
            results[name].append(timed(cmd, cwd[name], envs[name]))
    lines = data.read_bytes().count(b"\n") - 1
    print(f"input: {data.name}, {args.jobs:,} job lines ({lines:,} lines with steps), "
          f"{data.stat().st_size / 1e6:.0f} MB; {args.runs} runs each, medians")
    if args.usage:
        print(f"  with usage: {with_usage.name}, {with_usage.stat().st_size / 1e6:.0f} MB")
    med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3))
           for k, v in results.items()}
    for name, (wall, rss, user) in med.items():
        runs = ", ".join(f"{r[0]:.2f}" for r in results[name])
        print(f"  {name:8s} {wall:6.2f} s  peak {rss:6.0f} MiB  user {user:5.2f} s   (runs: {runs})")
    print(f"  collect / floor = {med['collect'][0] / med['floor'][0]:.2f}x (target <= 2x, "
          f"peak memory target < 1536 MiB)")
    if "baseline" in med:
        print(f"  collect / baseline = {med['collect'][0] / med['baseline'][0]:.2f}x "
              f"(user time {med['collect'][2] / med['baseline'][2]:.2f}x)")
        if "usage" in med:
            print(f"  usage / baseline = {med['usage'][0] / med['baseline'][0]:.2f}x "
                  f"(user time {med['usage'][2] / med['baseline'][2]:.2f}x; "
                  "efficiency target <= 1.3x)")
    if "noqueue" in med:
        print(f"  collect / noqueue = {med['collect'][0] / med['noqueue'][0]:.2f}x "
              f"(user time {med['collect'][2] / med['noqueue'][2]:.2f}x; queue target <= 1.2x)")
    if "usage" in med:
        print(f"  usage / collect = {med['usage'][0] / med['collect'][0]:.2f}x "
              f"(user time {med['usage'][2] / med['collect'][2]:.2f}x)")


if __name__ == "__main__":
    main()
