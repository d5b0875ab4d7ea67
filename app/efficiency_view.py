"""The efficiency table's rows and flags, for the Dash page and the static export (pure).

Each flag is a quiet hint, never blame: what to try next time. The numbers
and their rules are collector/efficiency.py's (README, "Efficiency").
"""

from __future__ import annotations

import math

from app.figures import View
from collector.config_model import EfficiencyConfig
from collector.efficiency import EfficiencyRow, efficiency_rows
from collector.snapshot import Snapshot

EFFICIENCY_COLUMNS = (("user", "User"), ("jobs", "Jobs ended"), ("running", "Running now"),
                      ("cpu", "CPU"),
                      ("memory", "Memory"), ("time", "Time"), ("gpu", "GPU"),
                      ("wasted_cpu_hours", "CPU-h unused"), ("wasted_gb_hours", "GB-h unused"),
                      ("flags", "Worth a look"))
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


def _percent(value: float, recorded: bool = True) -> str:
    if not recorded or math.isnan(value):
        return NOT_RECORDED
    return f"{100 * value:.0f}%"


def _gpu_text(row: EfficiencyRow) -> str:
    if not row.gpu_jobs:
        return "no GPU jobs"
    return _percent(row.gpu)


def efficiency_table(snap: Snapshot, view: View, rules: EfficiencyConfig
                     ) -> list[dict[str, object]]:
    """Per user, over the local days the view covers: each efficiency as text
    ("not recorded" where Slurm did not record it, never 0), the unused
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
         "wasted_cpu_hours": round(r.wasted_cpu_hours, 1),
         "wasted_gb_hours": round(r.wasted_gb_hours, 1),
         "flags": [FLAG_LABELS[f] for f in r.flags], "hints": [hint(f, rules) for f in r.flags]}
        for r in rows]
    counted = {r.user for r in rows}
    table += [{"user": u, "jobs": 0, "running": n, "cpu": RUNNING, "memory": RUNNING,
               "time": RUNNING, "gpu": RUNNING, "wasted_cpu_hours": 0.0, "wasted_gb_hours": 0.0,
               "flags": [], "hints": []}
              for u, n in sorted(running.items(), key=lambda kv: (-kv[1], kv[0]))
              if u not in counted]
    return table


def flags_markdown(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows for the Dash table: each flag a code span, which the page's
    CSS draws as a quiet badge (assets/librarian.css, `.flag-badge`)."""
    return [{**r, "flags": " ".join(f"`{f}`" for f in r["flags"])}  # type: ignore[attr-defined]
            for r in rows]


def flag_tooltips(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The DataTable's tooltip_data: each flagged row's hints on its flags cell."""
    return [{"flags": {"value": " ".join(map(str, r["hints"])), "type": "text"}}  # type: ignore[call-overload]
            if r["hints"] else {} for r in rows]


__all__ = ["EFFICIENCY_COLUMNS", "EFFICIENCY_NOTE", "FLAG_LABELS", "NOT_RECORDED", "RUNNING",
           "efficiency_table", "flag_tooltips", "flags_markdown", "hint"]
