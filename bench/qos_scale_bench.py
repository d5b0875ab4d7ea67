"""Benchmark: cost against the number of QoS (10, 100, 500), 20 users and ~2,000 jobs each.

A site with many groups: each QoS has its own 20 users and about 2,000 jobs
in 30 days (so 500 QoS are 1,000,000 jobs and 10,000 users). For each size,
as separate `librarian` processes (interpreter start and imports included),
each timed with its peak memory (the summed PSS of the process and those
it forks, sampled every 0.1 s, or its own max RSS from wait4 if larger):

  file      `collect --no-plots --sacct-file` of the whole history (no store);
  backfill  `collect --no-plots --full` against a fake sacct that answers each
            day-sized query with the jobs active that day (the first run);
  cycle     the next incremental `collect --no-plots`, 10 minutes later, the
            fake sacct answering with the jobs running, pending or ended in
            the last 70 minutes (the 60-minute overlap): the usual cycle.
  plots     the next cycle a minute later, with the plots as configured by
            default (PNG, 2 processes, plots.budget_seconds = 20: the QoS not
            drawn in time are drawn first next cycle); the log says how many.
  unchanged the next cycle another minute later, without plots: the QoS whose
            content did not change are not written (collector/checked.py).
  export    `librarian export` of the static site from those snapshots.
  page      the dashboard under gunicorn (2 workers) in Chromium: from opening
            the page to the overview's rows all drawn and the first QoS's
            four charts drawn (median of 3 loads, the first one not counted:
            it warms the caches); the time to the overview alone beside it.

Histories are made once and cached in bench/out/.

    .venv/bin/python bench/qos_scale_bench.py [--qos 10 100 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUT = HERE / "out"
NOW = 1_764_000_000  # 2025-11-24T16:00:00Z
LAST = NOW - 600
DAY = 86400
USERS, JOBS = 20, 2000


def qos_names(n: int) -> list[str]:
    return [f"grp{i:03d}" for i in range(n)]


def config_text(n: int) -> str:
    qos = "".join(f'[[qos]]\nname = "{q}"\nlimits = {{ cpus = 200, gpus = 8, memory_gb = 1000 }}\n\n'
                  for q in qos_names(n))
    return ('[site]\nname = "Scale"\ntimezone = "UTC"\ndata_dir = "data"\n\n'
            "[collect]\nbin_seconds = 3600\nwindow_days = 30\nhistory_days = 0\n"
            "overlap_minutes = 60\n\n" + qos)


def make_history(n: int) -> Path:
    """One file: every QoS's own synthetic month, its own users and job ids."""
    path = OUT / f"scale_{n}.txt"
    if path.exists():
        return path
    from collector.synth import SynthQos, synth_sacct

    parts = []
    for i, q in enumerate(qos_names(n)):
        text = synth_sacct(NOW, 30, JOBS, n_users=USERS, qos=(SynthQos(q, 1.0, 0.1),),
                           tz="UTC", seed=i, user_prefix=f"{q}-", first_job_id=1000 + i * 10_000)
        lines = text.decode().splitlines()
        parts.extend(lines[1:] if parts else lines)
    path.write_text("\n".join(parts) + "\n")
    return path


def _epoch(text: str) -> float | None:
    if text in ("Unknown", "None", ""):
        return None
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S")) - time.timezone


def split_answers(history: Path) -> Path:
    """Per UTC day, the lines sacct prints for that day (eligible or running in
    it), as of LAST; and the incremental answer at NOW. A folder of files."""
    folder = history.with_suffix(".answers")
    if (folder / "incremental.txt").exists():
        return folder
    folder.mkdir(exist_ok=True)
    lines = history.read_text().splitlines()
    header = lines[0].split("|")
    si, st, ei = header.index("Submit"), header.index("Start"), header.index("End")
    first_day = (LAST - 30 * DAY - 2 * DAY) // DAY
    days: dict[int, list[str]] = {}
    since = LAST - 3600
    incremental = [lines[0]]
    for ln in lines[1:]:
        cells = ln.split("|")
        submit, end = _epoch(cells[si]), _epoch(cells[ei])
        if _epoch(cells[st]) is None and end is None and submit and submit > LAST:
            continue
        if submit is not None and submit <= NOW and (end is None or end >= since):
            incremental.append(ln)
        if submit is None or submit > LAST:
            continue
        stop = LAST if end is None else min(end, LAST)
        for d in range(max(int(submit) // DAY, first_day), int(stop) // DAY + 1):
            days.setdefault(d, []).append(ln)
    for d, rows in days.items():
        (folder / f"{d}.txt").write_text("\n".join([lines[0], *rows]) + "\n")
    (folder / "header.txt").write_text(lines[0] + "\n")
    (folder / "incremental.txt").write_text("\n".join(incremental) + "\n")
    return folder


FAKE = """#!/bin/sh
# A fake sacct: the day's answer for --starttime, the incremental answer in
# mode 'incremental', the header only for by-id questions; the lines of the
# QoS named in --qos alone (more QoS than collect.qos_per_query take several calls).
mode=$(cat {mode})
for a in "$@"; do
  case "$a" in
    --jobs=*) exec cat {answers}/header.txt ;;
    --starttime=*) start="${{a#--starttime=}}" ;;
    --qos=*) qos="${{a#--qos=}}" ;;
  esac
done
if [ "$mode" = incremental ]; then file={answers}/incremental.txt; else
  day=$(( $(date -u -d "$start" +%s) / 86400 ))
  file={answers}/$day.txt; [ -f "$file" ] || file={answers}/header.txt
fi
exec awk -F'|' -v q="$qos" 'BEGIN {{ n = split(q, a, ","); for (i = 1; i <= n; i++) ok[a[i]] = 1 }}
  NR == 1 || (${qos_column} in ok)' "$file"
"""


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [q for c in fh.read().split() for q in _tree(int(c))]
    except OSError:
        pass
    return out


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return next((int(ln.split()[1]) for ln in fh if ln.startswith("Pss:")), 0)
    except OSError:
        return 0


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak MiB) of one child process and the processes it forks:
    the peak of their summed PSS (shared pages counted once, sampled every
    0.1 s), or the child's own peak RSS (wait4) where that is larger."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], sum(_pss_kib(q) for q in _tree(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.returncode = 0
    proc.stderr.close()
    return seconds, max(peak[0], usage.ru_maxrss) / 1024


def written(site: Path) -> int:
    """The snapshots the last cycle wrote (their own time is its time)."""
    import json

    index = json.loads((site / "data" / "checked.json").read_text())["files"]
    last = max(e["checked"] for e in index.values())
    return sum(e["written"] == last for e in index.values())


def drawn(site: Path) -> int:
    return len(list((site / "data").glob("NCPUS_*.png")))


def page_load(site: Path, n: int) -> tuple[float, float]:
    """(seconds to the overview's rows, seconds to those and the first QoS's
    charts), median of 3 loads after one to warm up, in Chromium."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, gunicorn

    charts = ("() => ['graph-ncpus', 'graph-ngpus', 'graph-memory', 'graph-njobs'].every(g => "
              "{ const p = document.querySelector('#' + g + ' .js-plotly-plot'); "
              "return p && p.data && p.data.length > 0; })")
    rows = f"() => document.querySelectorAll('#overview-table tbody tr').length === {n}"
    times: list[tuple[float, float]] = []
    with gunicorn(site / "librarian.toml", workers=2, cwd=site) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(4):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t = time.perf_counter()
            page.goto(url + "/")
            page.wait_for_function(rows, timeout=120_000)
            first = time.perf_counter() - t
            page.wait_for_function(charts, timeout=120_000)
            times.append((first, time.perf_counter() - t))
            page.close()
        browser.close()
    warm = times[1:]
    return statistics.median(a for a, _ in warm), statistics.median(b for _, b in warm)


def bench(n: int, runs: int) -> dict[str, tuple[float, float]]:
    history = make_history(n)
    answers = split_answers(history)
    site = OUT / f"scale-site-{n}"
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    (site / "librarian.toml").write_text(config_text(n))
    fake = site / "bin"
    fake.mkdir()
    mode = site / "mode"
    column = (answers / "header.txt").read_text().split("|").index("QOS") + 1
    (fake / "sacct").write_text(FAKE.format(mode=mode, answers=answers, qos_column=column))
    (fake / "sacct").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    librarian = str(Path(sys.executable).with_name("librarian"))
    base = [librarian, "collect", "--config", "librarian.toml", "--no-plots", "-q"]
    steps = ("file", "backfill", "cycle", "plots", "unchanged", "export", "page")
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in steps}
    for _ in range(runs):
        out["file"].append(timed([*base, "--sacct-file", str(history), "--now", str(NOW)],
                                 site, env))
        shutil.rmtree(site / "data", ignore_errors=True)
        mode.write_text("days")
        out["backfill"].append(timed([*base, "--full", "--now", str(LAST)], site, env))
        mode.write_text("incremental")
        out["cycle"].append(timed([*base, "--now", str(NOW)], site, env))
        out["plots"].append(timed([librarian, "collect", "--config", "librarian.toml",
                                   "--now", str(NOW + 60)], site, env))
        out["unchanged"].append(timed([*base, "--now", str(NOW + 120)], site, env))
        out["export"].append(timed([librarian, "export", "--config", "librarian.toml", "-q",
                                    "--out", "site"], site, env))
        print(f"  ({n} QoS: {written(site)} snapshots written in the unchanged cycle, "
              f"{drawn(site)} QoS' plots drawn)")
        overview_s, page_s = page_load(site, n)
        out["page"].append((page_s, 0.0))
        print(f"  ({n} QoS: the overview drawn in {overview_s:.2f} s, the page in {page_s:.2f} s)")
    jobs = history.read_bytes().count(b"\n") - 1
    print(f"{n} QoS, {jobs:,} jobs:")
    result = {}
    for what, values in out.items():
        s = statistics.median(v[0] for v in values)
        m = max(v[1] for v in values)
        result[what] = (s, m)
        runs_text = ", ".join(f"{v[0]:.2f}" for v in values)
        print(f"  {what:9s} {s:7.2f} s  peak {m:6.0f} MiB   (runs: {runs_text})")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qos", type=int, nargs="+", default=[10, 100, 500])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    OUT.mkdir(exist_ok=True)
    for n in args.qos:
        bench(n, args.runs)


if __name__ == "__main__":
    main()
