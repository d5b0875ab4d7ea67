"""The queue, the limit pressure and the waits of one snapshot, for a view (pure).

Shared by the Dash callbacks and the static export, like app/figures.py:
the sentence on the tab when the group is at a limit, the queue table (as
squeue showed it at collection), the limit-pressure card and its daily
chart, and the wait history (a daily chart and a table per user).
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from app.figures import THEMES, View, overlap_seconds
from app.tables import Column, text_column
from collector.observables import observable
from collector.overview import pressure_over
from collector.pressure import WAIT_EDGES, percentile
from collector.snapshot import Snapshot

# How a resource is named in a sentence: (plural, one unit).
UNIT_WORDS = {"NCPUS": ("CPUs", "CPU"), "NGPUS": ("GPUs", "GPU"),
              "MEMORY": ("GB of memory", "GB of memory")}
MAX_HOLDERS = 5
WAIT_INFERENCE = ("Waiting at the limit is inferred from the job intervals: the part of "
                  "each wait during which the group held its QoS limit of a resource the "
                  "job asked for. Waits are of the jobs that started on the days shown; "
                  "their percentiles are read from a histogram (within about 9%).")


def _clock(epoch: float, snap: Snapshot) -> str:
    """'14:20' on the day of the snapshot, else 'Wed 2 Dec 14:20' (site time)."""
    tz = ZoneInfo(snap.timezone)
    t, now = datetime.fromtimestamp(epoch, tz), datetime.fromtimestamp(snap.now, tz)
    return t.strftime("%H:%M") if t.date() == now.date() else \
        t.strftime("%a ") + str(t.day) + t.strftime(" %b %H:%M")


def duration_text(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 d 4 h'."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(s // 3600, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def _amount(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 0.05 else f"{x:,.1f}"


def limit_sentences(snap: Snapshot) -> list[str]:
    """One sentence per limited resource the group is at now: who holds it,
    what waits, and when it frees up at the latest."""
    out = []
    for a in snap.limit_now:
        plural, one = UNIT_WORDS.get(a.key, (a.key, a.key))
        shown = a.holders[:MAX_HOLDERS]
        holders = ", ".join(f"{u} {_amount(x)}" for u, x in shown)
        if len(a.holders) > MAX_HOLDERS:
            holders += f" and {len(a.holders) - MAX_HOLDERS} more"
        text = f"{snap.qos} holds {_amount(a.used)} of {_amount(a.limit)} {plural} ({holders})"
        if a.waiting_jobs:
            text += f"; {a.waiting_jobs} job{'s' if a.waiting_jobs != 1 else ''} wait" \
                    f"{'s' if a.waiting_jobs == 1 else ''} for {plural}"
        else:
            text += f"; no job waits for {plural}"
        if a.frees_by is not None:
            text += (f"; running jobs' time limits return the first {one} by "
                     f"{_clock(a.frees_by, snap)} at the latest")
        out.append(text + ".")
    return out


QUEUE_COLUMNS = (text_column("user", "User"), Column("jobs", "Pending jobs", decimals=0),
                 Column("cpus", "CPUs", decimals=0), Column("gpus", "GPUs", decimals=0),
                 Column("mem_gib", "Mem GB"),
                 Column("longest_wait", "Longest wait", unit="h", kind="duration"),
                 text_column("reason", "Main reason"), Column("held", "Held", decimals=0))


def queue_note(snap: Snapshot) -> str:
    """When the queue was read, or since when it is unknown and why."""
    q = snap.queue
    if q is None:
        return "The queue was not read for this snapshot (it was collected from a saved file)."
    if q.error:
        since = f"since {_clock(q.read_at, snap)}" if q.read_at else "(never read yet)"
        return f"The queue is unknown {since}: squeue failed ({q.error})."
    skipped = f"; {q.skipped_lines} unreadable line(s) skipped" if q.skipped_lines else ""
    return f"Pending jobs as squeue showed them at {_clock(q.read_at or snap.now, snap)}{skipped}."


def queue_table(snap: Snapshot) -> list[dict[str, object]]:
    """Per user: pending jobs waiting for resources, what they ask, the longest
    wait, the main reason in words (Slurm's word when unknown), and held jobs."""
    if snap.queue is None or snap.queue.error:
        return []
    rows: list[dict[str, object]] = []
    for r in snap.queue.rows:
        rows.append({"user": r.user, "jobs": r.jobs, "cpus": r.cpus,
                     "gpus": r.gpus, "mem_gib": r.mem_gib,
                     "longest_wait": r.longest_wait / 3600 if r.jobs else None,
                     "reason": r.reason_words or r.reason, "held": r.held, "is_total": False})
    if rows:
        rows.append({"user": "Total", "jobs": sum(r.jobs for r in snap.queue.rows),
                     "cpus": sum(r.cpus for r in snap.queue.rows),
                     "gpus": sum(r.gpus for r in snap.queue.rows),
                     "mem_gib": sum(r.mem_gib for r in snap.queue.rows),
                     "longest_wait": max(r.longest_wait for r in snap.queue.rows) / 3600,
                     "reason": "", "held": sum(r.held for r in snap.queue.rows),
                     "is_total": True})
    return rows


PRESSURE_COLUMNS = (text_column("resource", "Resource"), Column("limit", "Limit", decimals=0),
                    Column("at_limit_h", "At the limit", unit="h"),
                    Column("waiting_h", "At it with jobs waiting", unit="h"),
                    Column("mean_share", "Mean in use", unit="%"),
                    Column("peak_share", "Peak in use", unit="%"),
                    Column("unused", "Unused", unit="resource-h"))


def pressure_rows(snap: Snapshot, view: View) -> list[dict[str, object]]:
    """Per limited resource over the view: hours at the limit, hours at it with
    jobs waiting for it, mean and peak share of the limit in use, and the
    unused capacity (collector/overview.py `pressure_over`: the overview's too)."""
    return [{"resource": observable(s.key).current_label, **asdict(s)}
            for s in pressure_over(snap, view.start, view.end)]


@functools.lru_cache(maxsize=8)
def _bin_days(first: int, n_bins: int, bin_seconds: int, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """The local dates of a window's bins (the same for every QoS of a site,
    made once): the dates in order, and each bin's place among them."""
    starts = first + bin_seconds * np.arange(n_bins, dtype=np.int64)
    text = np.asarray(pd.to_datetime(starts, unit="s", utc=True).tz_convert(tz)
                      .strftime("%Y-%m-%d"))
    names, which = np.unique(text, return_inverse=True)
    return names, which


def _theme_layout(theme: str, title: str, y_title: str) -> dict:
    c = THEMES.get(theme, THEMES["light"])
    return {"title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 14}},
            "height": 260, "margin": {"l": 55, "r": 15, "t": 36, "b": 40},
            "paper_bgcolor": c["paper"], "plot_bgcolor": c["plot"],
            "font": {"color": c["font"], "size": 12}, "barmode": "group",
            "legend": {"orientation": "h", "y": -0.25},
            "xaxis": {"type": "category", "gridcolor": c["grid"]},
            "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", "gridcolor": c["grid"],
                      "zerolinecolor": c["grid"]}}


def pressure_figure(snap: Snapshot, view: View, theme: str = "light") -> dict:
    """Hours at the limit per day of the view, one bar per limited resource."""
    seconds = overlap_seconds(snap, view)
    lengths = np.minimum(snap.bin_starts() + snap.bin_seconds, snap.now) - snap.bin_starts()
    part = np.divide(seconds, lengths, out=np.zeros(len(seconds)), where=lengths > 0)
    inside = seconds > 0
    names, which = _bin_days(snap.window_start, snap.n_bins, snap.bin_seconds, snap.timezone)
    shown = np.unique(which[inside])          # the days of the view, in order
    traces = []
    for key, p in snap.pressure.items():
        per_day = np.bincount(which[inside], weights=(p.at_limit * part)[inside] / 3600,
                              minlength=len(names))[shown]
        traces.append({"type": "bar", "name": observable(key).current_label,
                       "x": names[shown].tolist(), "y": [round(float(v), 2) for v in per_day],
                       "hovertemplate": "%{y:.1f} h at the limit"})
    layout = _theme_layout(theme, "Hours at the QoS limit per day", "hours")
    if not traces:
        layout["annotations"] = [{"text": "No QoS limit to be at", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return {"data": traces, "layout": layout}


WAIT_COLUMNS = (text_column("user", "User"), Column("jobs", "Jobs started", decimals=0),
                Column("median", "Median wait", unit="h", kind="duration"),
                Column("p90", "90th pct wait", unit="h", kind="duration"),
                Column("at_limit_share", "Of the waiting at the limit", unit="%"),
                Column("seen_limit", "Seen waiting on a group limit", decimals=0))


def _days_in_view(snap: Snapshot, view: View) -> np.ndarray:
    """Per (user, day) cell of the waits: its day overlaps the view."""
    w = snap.waits
    if not len(w.day):
        return np.zeros(0, dtype=bool)
    starts = w.day_starts[w.day]
    ends = w.day_starts[np.minimum(w.day + 1, len(w.day_starts) - 1)]
    return (starts < view.end) & (ends > view.start)


def wait_rows(snap: Snapshot, view: View) -> list[dict[str, object]]:
    """Per user, the waits of the jobs that started on the days of the view;
    the QoS as a whole last. Percentiles are read from the waits' histogram."""
    w = snap.waits
    inside = _days_in_view(snap, view)
    if not inside.any():
        return []
    n_users, n_bins = len(w.users), len(WAIT_EDGES)
    # Every user's histogram at once: one bincount over (user, bin).
    pick = inside[w.hist_cell]
    hist = np.bincount(w.user[w.hist_cell[pick]] * n_bins + w.hist_bin[pick],
                       weights=w.hist_count[pick], minlength=n_users * n_bins
                       ).reshape(n_users, n_bins)

    def per_user(values: np.ndarray) -> np.ndarray:
        return np.bincount(w.user[inside], weights=values[inside], minlength=n_users)

    jobs, waited, at, seen = (per_user(x.astype(np.float64)) for x in
                              (w.jobs, w.wait, w.at_limit, w.seen_limit))

    def row(name: str, h: np.ndarray, j: float, wt: float, a: float, sn: float,
            is_total: bool) -> dict[str, object]:
        median = percentile(h, 50)
        return {"user": name, "jobs": int(j), "median": median / 3600,
                "p90": percentile(h, 90) / 3600,
                "at_limit_share": 100 * a / wt if wt else 0.0,
                "seen_limit": int(sn), "is_total": is_total}

    rows = [row(u, hist[i], jobs[i], waited[i], at[i], seen[i], False)
            for i, u in enumerate(w.users) if jobs[i]]
    rows.sort(key=lambda r: (-float(r["median"]), str(r["user"])))  # type: ignore[arg-type]
    rows.append(row(f"All of {snap.qos}", hist.sum(axis=0), jobs.sum(), waited.sum(), at.sum(),
                    seen.sum(), True))
    return rows


def wait_figure(snap: Snapshot, view: View, theme: str = "light") -> dict:
    """Per day of the view, the median and 90th percentile wait of the jobs
    that started that day, and how much of the waiting was at the limit."""
    w = snap.waits
    inside = _days_in_view(snap, view)
    layout = _theme_layout(theme, "Wait of the jobs that started each day", "hours")
    if not inside.any():
        layout["annotations"] = [{"text": "No job started in this range", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
        return {"data": [], "layout": layout}
    tz = ZoneInfo(snap.timezone)
    days, median, p90, share = [], [], [], []
    for d in sorted(set(w.day[inside].tolist())):
        cells = inside & (w.day == d)
        hist = w.histogram(cells)
        days.append(datetime.fromtimestamp(float(w.day_starts[d]), tz).strftime("%Y-%m-%d"))
        median.append(round(percentile(hist, 50) / 3600, 3))
        p90.append(round(percentile(hist, 90) / 3600, 3))
        waited = float(w.wait[cells].sum())
        share.append(round(100 * float(w.at_limit[cells].sum()) / waited, 1) if waited else None)
    layout["yaxis2"] = {"title": {"text": "% at the limit"}, "overlaying": "y", "side": "right",
                        "range": [0, 100], "showgrid": False}
    layout["margin"]["r"] = 55
    return {"data": [
        {"type": "bar", "name": "% of waiting at the limit", "x": days, "y": share,
         "yaxis": "y2", "opacity": 0.35, "hovertemplate": "%{y:.0f}% at the limit"},
        {"type": "scatter", "mode": "lines+markers", "name": "median", "x": days, "y": median,
         "hovertemplate": "median %{y:.2f} h"},
        {"type": "scatter", "mode": "lines+markers", "name": "90th percentile", "x": days,
         "y": p90, "hovertemplate": "p90 %{y:.2f} h"},
    ], "layout": layout}
