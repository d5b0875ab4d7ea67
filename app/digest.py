"""`librarian digest`: the week (or month) of each QoS in a few lines (pure,
but for the PNG charts it draws with matplotlib).

A period is whole local days of the site: `week` is the seven days before
today (run on a Monday: last Monday to Sunday), `month` the last complete
calendar month; each is set against the period before it. Per QoS, from its
snapshot (the daily history, the window's limit pressure and the efficiency
sums): resource-hours and the share of the limit they are (limit x hours of
the period, as history_view's months), the unused capacity, jobs started,
hours at the limit and queued demand, the top users, and the users whose
efficiency earns a flag; then the collector's health from the status file.
Hours at the limit exist for the window only (collect.window_days): a
period reaching further back says how many of its days they cover.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from app.efficiency_view import FLAG_LABELS
from app.figures import freshness
from app.history_view import Month, days_total
from collector.config import Config
from collector.efficiency import efficiency_rows
from collector.history import local_date, midnights
from collector.observables import HELD, QUEUED, observable
from collector.snapshot import Snapshot
from collector.status import failures


@dataclass(frozen=True)
class Period:
    label: str
    first: date      # its first local day
    days: int


def periods(kind: str, now: float, tz: str) -> tuple[Period, Period]:
    """(this period, the one before) ending before today's local midnight."""
    today = local_date(now, tz)
    if kind == "week":
        first = today - timedelta(days=7)
        prev = first - timedelta(days=7)

        def label(d: date) -> str:
            return f"{d:%d %b} to {d + timedelta(days=6):%d %b %Y}"
        return Period(label(first), first, 7), Period(label(prev), prev, 7)
    if kind != "month":
        raise ValueError(f"not a digest period: {kind!r} (week or month)")
    end = today.replace(day=1)
    first = (end - timedelta(days=1)).replace(day=1)
    prev = (first - timedelta(days=1)).replace(day=1)
    return (Period(f"{first:%B %Y}", first, (end - first).days),
            Period(f"{prev:%B %Y}", prev, (first - prev).days))


def _mask(snap: Snapshot, p: Period) -> np.ndarray:
    h = snap.history
    if h is None:
        return np.zeros(0, dtype=bool)
    k = np.arange(h.n_days) + h.first.toordinal()
    return (k >= p.first.toordinal()) & (k < p.first.toordinal() + p.days)


@dataclass(frozen=True)
class Figure:
    """One resource over both periods: this, last (resource-hours), the share
    of the limit (%) and the unused limit-hours (None: no limit)."""

    key: str
    this: float
    last: float
    share: float | None
    last_share: float | None
    unused: float | None


@dataclass(frozen=True)
class QosDigest:
    qos: str
    figures: tuple[Figure, ...]
    jobs: tuple[int, int]
    queued: tuple[tuple[str, float, float], ...]      # (queued key, this, last)
    at_limit: tuple[tuple[str, float], ...]           # (limited key, hours this period)
    at_limit_days: int                                # days of the period the window covers
    top: tuple[tuple[str, float, float, float], ...]  # user, CPU-h, GPU-h, share of CPU-h %
    flags: tuple[tuple[str, tuple[str, ...]], ...]    # user, flag words
    daily: dict[str, np.ndarray] = field(default_factory=dict)   # user -> CPU-h per day
    day_labels: tuple[str, ...] = ()


def _pct(a: float, b: float | None) -> float | None:
    return 100 * a / b if b else None


def qos_digest(snap: Snapshot, this: Period, last: Period, config: Config) -> QosDigest:
    mask = _mask(snap, this)
    m = days_total(snap, this.label, mask)
    lm = days_total(snap, last.label, _mask(snap, last))

    def hours(month: Month | None, key: str) -> float:
        return float(month.hours[key].sum()) if month is not None else 0.0

    figures = []
    for o in HELD:
        if o.key == "NJOBS":
            continue
        cap = m.capacity.get(o.key, 0.0) if m is not None else 0.0
        lcap = lm.capacity.get(o.key, 0.0) if lm is not None else 0.0
        used = hours(m, o.key)
        figures.append(Figure(o.key, used, hours(lm, o.key), _pct(used, cap),
                              _pct(hours(lm, o.key), lcap),
                              max(cap - used, 0.0) if o.limit_key and cap else None))
    queued = tuple((o.key, hours(m, o.key), hours(lm, o.key)) for o in QUEUED
                   if o.queued_of in ("NCPUS", "NGPUS")
                   and max(hours(m, o.key), hours(lm, o.key)) >= 0.005)
    # Hours at the limit: the window's bins that fall inside the period.
    tz = snap.timezone
    edges = midnights(this.first, this.days, tz)
    a, b = float(edges[0]), min(float(edges[-1]), float(snap.now))
    starts = snap.bin_starts()
    inside = (starts >= a) & (starts < b)
    at_limit = tuple((k, float(p.at_limit[inside].sum()) / 3600) for k, p in snap.pressure.items())
    covered = round(inside.sum() * snap.bin_seconds / 86400)
    top: list[tuple[str, float, float, float]] = []
    daily: dict[str, np.ndarray] = {}
    labels: tuple[str, ...] = ()
    if m is not None:
        cpu, gpu = m.hours["NCPUS"], m.hours["NGPUS"]
        total = float(cpu.sum())
        order = sorted(range(len(m.users)), key=lambda i: (-cpu[i], -gpu[i], m.users[i]))
        top = [(m.users[i], float(cpu[i]), float(gpu[i]), _pct(float(cpu[i]), total) or 0.0)
               for i in order[:config.digest.top_users] if cpu[i] > 0 or gpu[i] > 0]
        h = snap.history
        assert h is not None   # days_total found days in it
        ncpus = h.seconds[0][:, mask] / 3600
        for name, _, _, _ in top:
            daily[name] = ncpus[h.users.index(name)]
        rest = np.ones(len(h.users), dtype=bool)
        rest[[h.users.index(n) for n, *_ in top]] = False
        if rest.any() and ncpus[rest].sum() > 0:
            daily["others"] = ncpus[rest].sum(axis=0)
        labels = tuple(f"{this.first + timedelta(days=k):%a %d}" for k in range(int(mask.sum())))
    rows = efficiency_rows(snap.efficiency, a, max(b - 1, a), config.efficiency) \
        if len(snap.efficiency.day_starts) else []
    flags = tuple((r.user, tuple(FLAG_LABELS[f] for f in r.flags)) for r in rows if r.flags)
    jobs = (int(m.jobs.sum()) if m is not None else 0, int(lm.jobs.sum()) if lm is not None else 0)
    return QosDigest(snap.qos, tuple(figures), jobs, queued, at_limit, covered, tuple(top),
                     flags, daily, labels)


@dataclass(frozen=True)
class Health:
    ok: bool
    lines: tuple[str, ...]


def health(status: dict[str, Any], snaps: list[Snapshot], now: float, interval_minutes: int,
           tz: str) -> Health:
    """The collector's health in words: failed steps, and how old the data is."""
    zone = ZoneInfo(tz)

    def when(t: float) -> str:
        return datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M")

    lines = [f"The last {title} failed at {when(at)}: {error}"
             for title, error, at in failures(status)]
    collect = status.get("steps", {}).get("collect", {})
    if isinstance(collect, dict) and collect.get("failed_in_row", 0) > 1:
        lines.append(f"The collect has failed {collect['failed_in_row']} cycles in a row.")
    if snaps:
        oldest = min(snaps, key=lambda s: s.now)
        if freshness(oldest, now, interval_minutes).stale:   # the pages' own rule
            age = now - oldest.now
            lines.append(f"The data is {age / 3600:.1f} h old (collected every "
                         f"{interval_minutes} min).")
    ok = not lines
    if ok and snaps:
        lines.append(f"Collecting normally; data of {when(max(s.now for s in snaps))}.")
    return Health(ok, tuple(lines))


@dataclass(frozen=True)
class Digest:
    site: str
    period: str               # week | month
    this: Period
    last: Period
    qos: tuple[QosDigest, ...]
    health: Health
    missing: tuple[tuple[str, str], ...] = ()   # QoS without a snapshot, and why

    @property
    def subject(self) -> str:
        return f"Librarian {self.period}ly digest: {self.site}, {self.this.label}"


def build(config: Config, snaps: list[Snapshot], status: dict[str, Any], now: float,
          kind: str, missing: tuple[tuple[str, str], ...] = ()) -> Digest:
    this, last = periods(kind, now, config.site.timezone)
    return Digest(config.site.name, kind, this, last,
                  tuple(qos_digest(s, this, last, config) for s in snaps),
                  health(status, snaps, now, config.app.collect_interval_minutes,
                         config.site.timezone), missing)


# --- words ------------------------------------------------------------------------


def _n(x: float) -> str:
    """A number for reading: whole from 10, one decimal from 1, two below."""
    if abs(x) >= 10 or x == 0:
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 1 else f"{x:,.2f}"


def _share(x: float) -> str:
    return "<1%" if 0 < x < 0.5 else f"{x:.0f}%"


def _change(this: float, last: float) -> str:
    if not last:
        return "new" if this else "none either"
    return f"{100 * (this - last) / last:+.0f}%"


def _figure_line(f: Figure, period: str) -> str:
    o = observable(f.key)
    text = f"{_n(f.this)} {o.total_label} ({_change(f.this, f.last)} on last {period}'s {_n(f.last)})"
    if f.share is not None:
        text += f", {_share(f.share)} of the limit"
        if f.last_share is not None:
            text += f" (last {period} {_share(f.last_share)})"
    if f.unused is not None:
        text += f"; {_n(f.unused)} {o.total_label} of it unused"
    return text


def qos_lines(q: QosDigest, period: str) -> list[str]:
    lines = [_figure_line(f, period) for f in q.figures if f.this or f.last]
    lines.append(f"{q.jobs[0]:,} jobs started ({_change(*q.jobs)} on last {period}'s {q.jobs[1]:,})")
    if q.at_limit:
        hit = [(k, h) for k, h in sorted(q.at_limit) if h >= 0.05]
        parts = ", ".join(f"{observable(k).current_label} {h:.1f} h" for k, h in hit) or "never"
        note = "" if q.at_limit_days >= 7 else \
            f" (over the {q.at_limit_days} day(s) of it the window holds)"
        lines.append(f"At the limit: {parts}{note}")
    for key, this, last in q.queued:
        unit = observable(str(observable(key).queued_of)).total_label
        lines.append(f"Queued demand: {_n(this)} {unit} waited "
                     f"({_change(this, last)} on last {period}'s {_n(last)})")
    if q.top:
        lines.append("Top users: " + "; ".join(
            f"{u} {_n(c)} CPU-h ({s:.0f}%)" + (f", {_n(g)} GPU-h" if g >= 0.005 else "")
            for u, c, g, s in q.top))
    if q.flags:
        lines.append("Efficiency flags: " + "; ".join(f"{u} ({', '.join(w)})" for u, w in q.flags))
    if not (q.jobs[0] or any(f.this for f in q.figures)):
        lines = [f"No jobs this {period}.", *lines[-1:]] if q.flags else [f"No jobs this {period}."]
    return lines


def text(d: Digest) -> str:
    out = [d.subject, f"(against {d.last.label})", ""]
    for q in d.qos:
        out += [q.qos, *[f"  {ln}" for ln in qos_lines(q, d.period)], ""]
    for qos, why in d.missing:
        out += [f"{qos}: no data ({why})", ""]
    out += ["Collector: " + " ".join(d.health.lines)]
    return "\n".join(out) + "\n"


def markdown(d: Digest) -> str:
    out = [f"**{d.subject}** (against {d.last.label})"]
    for q in d.qos:
        out += ["", f"**{q.qos}**", *[f"- {ln}" for ln in qos_lines(q, d.period)]]
    for qos, why in d.missing:
        out += ["", f"**{qos}**: no data ({why})"]
    out += ["", ("Collector: " if d.health.ok else ":warning: Collector: ") + " ".join(d.health.lines)]
    return "\n".join(out) + "\n"


def html(d: Digest, charts: dict[str, str]) -> str:
    """The HTML part: `charts` maps a QoS to the cid of its inline PNG."""
    parts = [f"<h2 style='font-family:sans-serif'>{escape(d.subject)}</h2>",
             f"<p style='font-family:sans-serif;color:#555'>against {escape(d.last.label)}</p>"]
    for q in d.qos:
        parts.append(f"<h3 style='font-family:sans-serif'>{escape(q.qos)}</h3><ul "
                     "style='font-family:sans-serif'>")
        parts += [f"<li>{escape(ln)}</li>" for ln in qos_lines(q, d.period)]
        parts.append("</ul>")
        if q.qos in charts:
            parts.append(f"<img src='cid:{charts[q.qos]}' alt='CPU-hours per day, {escape(q.qos)}'"
                         " width='560'>")
    for qos, why in d.missing:
        parts.append(f"<p style='font-family:sans-serif'><b>{escape(qos)}</b>: no data "
                     f"({escape(why)})</p>")
    colour = "#1a7f37" if d.health.ok else "#b42318"
    parts.append(f"<p style='font-family:sans-serif;color:{colour}'>Collector: "
                 f"{escape(' '.join(d.health.lines))}</p>")
    return "<html><body>" + "\n".join(parts) + "</body></html>\n"


def chart_png(q: QosDigest) -> bytes | None:
    """CPU-hours per day stacked by the top users (and the others), as PNG."""
    if not q.daily or not q.day_labels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure as MplFigure

    from collector.palette import assign_colors

    fig = MplFigure(figsize=(5.6, 2.2), dpi=100)
    ax = fig.add_subplot()
    x = np.arange(len(q.day_labels))
    bottom = np.zeros(len(x))
    colors = assign_colors([u for u in q.daily if u != "others"])
    for user, values in q.daily.items():
        ax.bar(x, values, bottom=bottom, label=user,
               color=colors.get(user, "#bbbbbb"), width=0.8)
        bottom += values
    ax.set_xticks(x, q.day_labels, fontsize=7, rotation=0 if len(x) <= 7 else 90)
    ax.set_ylabel("CPU-h", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"{q.qos}: CPU-hours per day", fontsize=9)
    ax.legend(fontsize=6, ncol=min(len(q.daily), 6), loc="upper left", frameon=False)
    ax.set_ylim(0, max(float(bottom.max()) * 1.3, 1.0))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def key_of(d: Digest) -> str:
    """What makes this digest itself (its id in the outbox): site, kind, period."""
    return f"digest|{d.site}|{d.period}|{d.this.first.isoformat()}"

