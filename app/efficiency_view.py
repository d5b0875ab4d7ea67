"""The efficiency table's rows and flags, for the Dash page and the static export (pure).

Each flag is a quiet hint, never blame: what to try next time. The numbers
and their rules are collector/efficiency.py's (README, "Efficiency").
"""

from __future__ import annotations

import math

from app.figures import View
from app.tables import Column, text_column
from collector.config_model import EfficiencyConfig
from collector.efficiency import EfficiencyRow, efficiency_rows
from collector.snapshot import Snapshot

EFFICIENCY_COLUMNS = (text_column("user", "User"), Column("jobs", "Jobs ended", decimals=0),
                      Column("running", "Running now", decimals=0),
                      Column("cpu", "CPU", unit="%", decimals=0),
                      Column("memory", "Memory", unit="%", decimals=0),
                      Column("time", "Time", unit="%", decimals=0),
                      Column("gpu", "GPU", unit="%", decimals=0),
                      Column("wasted_cpu_hours", "Unused", unit="CPU-h"),
                      Column("wasted_gb_hours", "Unused", unit="GB-h"),
                      Column("flags", "Worth a look", kind="flags"))
NOT_RECORDED = "not recorded"
RUNNING = "running"
# A flag's words on its badge: the resource to look at, never a verdict.
FLAG_LABELS = {"cpu": "CPUs", "memory": "memory", "time": "time limit", "gpu": "GPUs"}
EFFICIENCY_NOTE = ("From Slurm's own accounting: CPU time used ÷ CPU time held, peak memory ÷ "
                   "memory held, run time ÷ time limit, GPU utilisation where the cluster "
                   "records it; each a user's total, weighted by what was held. \"Not recorded\" "
                   "means Slurm kept no figure, not zero; jobs still running are counted once they "
                   "end. Hover a flag for what to try.")


def hint(flag: str, rules: EfficiencyConfig) -> str:
    """What a flag suggests, in the words the tooltip shows."""
    return {
        "cpu": f"CPU efficiency under {rules.cpu_below_percent:g}% over more than "
               f"{rules.cpu_over_cpu_hours:g} CPU-hours: try fewer CPUs (--cpus-per-task, "
               "--ntasks), or check that the program runs in parallel.",
        "memory": f"Peak memory under {rules.memory_below_percent:g}% of what was held over "
                  f"more than {rules.memory_over_gb_hours:g} GB-hours: try a smaller --mem "
                  "(leave some headroom over the peak).",
        "time": f"Jobs ran for under {rules.time_below_percent:g}% of their time limit: a "
                "shorter --time lets the scheduler start them sooner (backfill).",
        "gpu": f"GPU utilisation under {rules.gpu_below_percent:g}%, or a GPU job that never "
               "used its GPU: check the program uses the GPU, or ask for fewer GPUs.",
    }[flag]


def _percent(value: float) -> float | str:
    """A percentage, unrounded, or the words for a figure Slurm did not keep."""
    if math.isnan(value):
        return NOT_RECORDED
    return 100 * value


def _gpu_text(row: EfficiencyRow) -> float | str:
    if not row.gpu_jobs:
        return "no GPU jobs"
    return _percent(row.gpu)


def efficiency_table(snap: Snapshot, view: View, rules: EfficiencyConfig
                     ) -> list[dict[str, object]]:
    """Per user, over the local days the view covers: each efficiency in
    percent ("not recorded" where Slurm did not record it, never 0), the unused
    hours, the flags (their badge words) and their hints, and the jobs
    running now, which are not guessed at: a user with only running jobs
    reads "running". Busiest (CPU-hours held) first."""
    rows = efficiency_rows(snap.efficiency, view.start, max(view.end - 1, view.start), rules)
    running = {u: int(n) for u, n in zip(snap.users, snap.current.get("NJOBS", ()), strict=False)
               if n > 0}
    table: list[dict[str, object]] = [
        {"user": r.user, "jobs": r.jobs, "running": running.get(r.user, 0),
         "cpu": _percent(r.cpu), "memory": _percent(r.memory),
         "time": _percent(r.time), "gpu": _gpu_text(r),
         "wasted_cpu_hours": r.wasted_cpu_hours, "wasted_gb_hours": r.wasted_gb_hours,
         "flags": [FLAG_LABELS[f] for f in r.flags], "hints": [hint(f, rules) for f in r.flags]}
        for r in rows]
    counted = {r.user for r in rows}
    table += [{"user": u, "jobs": 0, "running": n, "cpu": RUNNING, "memory": RUNNING,
               "time": RUNNING, "gpu": RUNNING, "wasted_cpu_hours": 0.0, "wasted_gb_hours": 0.0,
               "flags": [], "hints": []}
              for u, n in sorted(running.items(), key=lambda kv: (-kv[1], kv[0]))
              if u not in counted]
    return table


__all__ = ["EFFICIENCY_COLUMNS", "EFFICIENCY_NOTE", "FLAG_LABELS", "NOT_RECORDED", "RUNNING",
           "efficiency_table", "hint"]
