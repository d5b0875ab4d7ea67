"""Monthly totals from a snapshot's daily history, for both pages (pure).

A month is the site's local calendar month; its days are the history's local
days (23 or 25 hours across a daylight-saving change). The QoS's capacity in
a month is its limit x the hours of the month the history covers (from the
history's first day, to now in the current month), with the limit as it
stood at each moment (a limit raised mid-month counts from then); before the
first recorded step the first step's value is taken. Jobs are the jobs that
started in the month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from app.tables import Column, text_column
from collector.history import History, midnights
from collector.observables import CHART_KEYS, HELD, KEYS, QUEUED, USED, observable
from collector.snapshot import Snapshot

MONTH_NOTE = ("Months are the site's local calendar months, over the history the collector "
              "keeps (collect.history_days; the window otherwise): a month only partly inside it "
              "counts the days it has; months before the first job are left out. The share of "
              "the limit is the resource-hours used over the limit x the hours of the month "
              "covered, with the limit as it stood at each moment. Jobs are those that started "
              "in the month. CPU and memory used are what the jobs that ended used of what all "
              "the month's jobs held (a month with jobs still running reads low until they "
              "end); blank where nothing was recorded.")


@dataclass(frozen=True)
class Month:
    label: str                      # "2026-11"
    start: int                      # epoch seconds of the part the history covers
    end: int
    users: tuple[str, ...]
    hours: dict[str, np.ndarray]    # observable -> resource-hours per user
    jobs: np.ndarray                # jobs started, per user
    capacity: dict[str, float]      # limited observable -> limit x hours (0: no limit)


def limit_hours(snap: Snapshot, key: str, a: float, b: float) -> float:
    """The integral of the limit over [a, b), in limit-hours."""
    steps = snap.limit_steps(key)
    total = 0.0
    for i, (t, value) in enumerate(steps):
        lo = a if i == 0 else max(a, t)          # the first step stands for all before it
        hi = b if i + 1 == len(steps) else min(b, steps[i + 1][0])
        if value and hi > lo:
            total += value * (hi - lo) / 3600
    return total


def days_total(snap: Snapshot, label: str, days: np.ndarray) -> Month | None:
    """The history's totals over some of its days (`days`: a mask of them, in
    one run), as a Month: resource-hours and jobs per user, and the capacity
    over the same hours. None when the history holds none of those days."""
    h: History | None = snap.history
    if h is None or not h.n_days or not days.any():
        return None
    edges = midnights(h.first, h.n_days, snap.timezone)
    idx = np.flatnonzero(days)
    start, end = float(edges[idx[0]]), min(float(edges[idx[-1] + 1]), float(snap.now))
    hours = {o: h.seconds[i][:, days].sum(axis=1) / 3600 for i, o in enumerate(KEYS)}
    capacity = {o.key: limit_hours(snap, o.key, start, end) for o in HELD if o.limit_key}
    return Month(label, int(start), int(end), h.users, hours, h.started[:, days].sum(axis=1),
                 capacity)


def months(snap: Snapshot) -> list[Month]:
    """The months the history touches, oldest first, from the first with a job."""
    h: History | None = snap.history
    if h is None or not h.n_days:
        return []
    keys = [date.fromordinal(h.first.toordinal() + k).strftime("%Y-%m") for k in range(h.n_days)]
    out = [m for label in dict.fromkeys(keys)
           if (m := days_total(snap, label, np.array([k == label for k in keys]))) is not None]
    # Months before the history's first job say nothing (a year kept, jobs for 90 days).
    while out and not out[0].jobs.any() and not any(v.any() for v in out[0].hours.values()):
        out.pop(0)
    return out


MONTH_COLUMNS = (
    text_column("month", "Month"), Column("days", "Days", decimals=0),
    *[c for o in HELD for c in (
        Column(o.key, o.total_label),
        *([Column(f"{o.key}_share", f"{o.current_label} of limit", unit="%", short="% limit")]
          if o.limit_key else []))],
    Column("jobs", "Jobs started", decimals=0),
    *[Column(o.key, o.total_label) for o in QUEUED if o.queued_of == "NCPUS"],
    *[Column(f"{o.key}_of_held", f"{o.current_label} of held", unit="%", short="% used")
      for o in USED],
)


def month_rows(snap: Snapshot) -> list[dict[str, object]]:
    """Per month, newest first: the QoS's resource-hours, the share of its
    capacity used, jobs started, queued CPU-hours, and the share of the CPUs
    and memory held that the ended jobs used."""
    rows = []
    for m in reversed(months(snap)):
        row: dict[str, object] = {"month": m.label, "days": round((m.end - m.start) / 86400, 2)}
        for o in HELD:
            used = float(m.hours[o.key].sum())
            row[o.key] = used
            if o.limit_key:
                cap = m.capacity.get(o.key, 0.0)
                row[f"{o.key}_share"] = 100 * used / cap if cap else None
        row["jobs"] = int(m.jobs.sum())
        for o in QUEUED:
            if o.queued_of == "NCPUS":
                row[o.key] = float(m.hours[o.key].sum())
        for o in USED:   # efficiency: the used shade's hours over the held ones
            row[f"{o.key}_of_held"] = _share(m, None, o.key, str(o.used_of))
        rows.append(row)
    return rows


USER_MONTH_COLUMNS = (
    text_column("user", "User"),
    *[c for key in CHART_KEYS for c in (
        Column(f"{key}_this", f"{observable(key).total_label} this month"),
        Column(f"{key}_last", f"{observable(key).total_label} last month"))],
    Column("jobs_this", "Jobs this month", decimals=0),
    Column("jobs_last", "Jobs last month", decimals=0),
    *[c for o in QUEUED if o.queued_of == "NCPUS" for c in (
        Column(f"{o.key}_this", f"{o.total_label} this month"),
        Column(f"{o.key}_last", f"{o.total_label} last month"))],
    *[Column(f"{o.key}_of_held_{tag}", f"{o.current_label} of held {when}", unit="%",
             short=f"% used {when}")
      for o in USED if o.used_of == "NCPUS" for tag, when in (("this", "this month"),
                                                               ("last", "last month"))],
)
_SHARES = tuple(c.id for c in USER_MONTH_COLUMNS if "_of_held_" in c.id)


def user_month_rows(snap: Snapshot) -> list[dict[str, object]]:
    """Per user, this month against the last (what the history holds of each):
    resource-hours, jobs started, queued CPU-hours and the CPUs used of held;
    busiest this month first, then a total."""
    ms = months(snap)
    if not ms:
        return []
    this, last = ms[-1], (ms[-2] if len(ms) > 1 else None)
    users = sorted(set(this.users) | set(last.users if last else ()))
    rows: list[dict[str, object]] = []
    totals: dict[str, object] = {"user": "Total", "is_total": True}
    for u in users:
        row: dict[str, object] = {"user": u, "is_total": False}
        for key in CHART_KEYS:
            for tag, m in (("this", this), ("last", last)):
                i = m.users.index(u) if m is not None and u in m.users else -1
                row[f"{key}_{tag}"] = float(m.hours[key][i]) if m is not None and i >= 0 else 0.0
        for tag, m in (("this", this), ("last", last)):
            i = m.users.index(u) if m is not None and u in m.users else -1
            row[f"jobs_{tag}"] = int(m.jobs[i]) if m is not None and i >= 0 else 0
            for o in QUEUED:
                if o.queued_of == "NCPUS":
                    row[f"{o.key}_{tag}"] = float(m.hours[o.key][i]) \
                        if m is not None and i >= 0 else 0.0
            for o in USED:
                if o.used_of == "NCPUS":
                    row[f"{o.key}_of_held_{tag}"] = _share(m, i, o.key, str(o.used_of))
        if any(v for k, v in row.items() if k not in ("user", "is_total", *_SHARES)):
            rows.append(row)
    rows.sort(key=lambda r: (-float(r["NCPUS_this"]), str(r["user"])))  # type: ignore[arg-type]
    for col in USER_MONTH_COLUMNS[1:]:
        if col.id not in _SHARES:
            totals[col.id] = sum(r[col.id] for r in rows)  # type: ignore[misc]
    for o in USED:   # the total's share: of all the held hours, not a sum of shares
        if o.used_of == "NCPUS":
            for tag, m in (("this", this), ("last", last)):
                totals[f"{o.key}_of_held_{tag}"] = _share(m, None, o.key, str(o.used_of))
    return [*rows, totals] if rows else []


def _share(m: Month | None, i: int | None, used: str, held: str) -> float | None:
    """The used hours over the held ones (%), of one member (`i`) or all
    (None); None where nothing was recorded."""
    if m is None or (i is not None and i < 0):
        return None
    u = float(m.hours[used][i] if i is not None else m.hours[used].sum())
    h = float(m.hours[held][i] if i is not None else m.hours[held].sum())
    return 100 * u / h if u > 0 and h > 0 else None


def month_figure(snap: Snapshot, theme: str = "light") -> dict:
    """The share of the QoS's capacity used per month, one bar per limited resource."""
    from app.queue_view import _theme_layout

    ms = months(snap)
    layout = _theme_layout(theme, "Share of the QoS limit used per month", "% of limit x hours")
    traces = []
    for o in HELD:
        if not o.limit_key or not any(m.capacity.get(o.key) for m in ms):
            continue
        traces.append({"type": "bar", "name": o.current_label, "x": [m.label for m in ms],
                       "y": [100 * float(m.hours[o.key].sum()) / m.capacity[o.key]
                             if m.capacity.get(o.key) else None for m in ms],
                       "hovertemplate": "%{y:.1f}% of the limit"})
    if not traces:
        layout["annotations"] = [{"text": "No QoS limit to measure against", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return {"data": traces, "layout": layout}


__all__ = ["MONTH_COLUMNS", "MONTH_NOTE", "USER_MONTH_COLUMNS", "Month", "month_figure", "month_rows",
           "months", "user_month_rows"]
