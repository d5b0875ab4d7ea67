"""Snapshot + view state -> Plotly figures and table rows (pure; no Dash, no I/O).

Shared by the Dash callbacks and the static export. Figures are plain dicts
(what Plotly.js takes), built directly rather than through plotly.graph_objects,
which would validate every property on every range change.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from app.fold import NO_FOLD, Fold, fold_daily, fold_hourly
from collector.observables import CHART_KEYS, observable, queued_key, used_key
from collector.palette import assign_colors, user_color
from collector.snapshot import Snapshot

RANGES: dict[str, int] = {
    "6h": 6 * 3600, "12h": 12 * 3600, "24h": 24 * 3600, "3d": 3 * 86400,
    "7d": 7 * 86400, "14d": 14 * 86400, "30d": 30 * 86400, "90d": 90 * 86400,
    "1y": 365 * 86400,
}
# Ranges over the hourly window: drawn from the daily history, the last N local days.
DAILY_RANGES: dict[str, int] = {"90d": 90, "1y": 365}
DAILY_NOTE = ("Over 30 days the charts show daily averages from the daily history "
              "(each local day's resource-hours over its hours); limit pressure, waits and "
              "efficiency show the last 30 days.")
DAILY_FILLING = ("The history before {day} is still being read from Slurm: a first run reads "
                 "the 30-day window, and each cycle after it reads older days.")
DEFAULT_RANGE = "7d"
DEFAULT_GROUP = "user"     # or "account", "partition" (collector/jobtable.py GROUPINGS)
CUSTOM = "custom"
# What the charts draw: the running jobs' allocation, the waiting jobs' requests, or both
# (the queue stacked above the running usage, hatched and lighter).
SHOW_MODES = ("running", "queued", "both")
DEFAULT_SHOW = "running"
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"   # what an <input type="datetime-local"> holds

THEMES = {
    "light": {"paper": "#ffffff", "plot": "#ffffff", "font": "#212529", "grid": "#e5e7eb",
              "limit": "#c0392b"},
    "dark": {"paper": "#212529", "plot": "#212529", "font": "#dee2e6", "grid": "#3d434a",
             "limit": "#ff6b6b"},
}


EMPTY_TEXT = {"running": "No usage in this range", "queued": "Nothing queued in this range",
              "both": "No usage or queue in this range"}

RANGE_EMPTY = "the custom range is empty: 'from' must be before 'to', inside the window"


class RangeError(ValueError):
    """A custom range that cannot be shown (unreadable, or from >= to)."""


@dataclass(frozen=True)
class View:
    """The time span shown: [start, end) in epoch seconds, and how it was chosen."""

    start: int
    end: int
    key: str  # a preset name, or "custom"

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600


def _parse_local(text: str, tz: ZoneInfo) -> int:
    try:
        t = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise RangeError(f"not a date and time: {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return int(t.timestamp())


def resolve_view(snap: Snapshot, key: str | None, start: str | None = None,
                 end: str | None = None) -> View:
    """The span to show. Presets count back from the snapshot's collection time,
    never from the viewer's clock; a custom span is clipped to the window."""
    window_start = snap.window_start
    if key == CUSTOM:
        tz = ZoneInfo(snap.timezone)
        s, e = _parse_local(start or "", tz), _parse_local(end or "", tz)
        s, e = max(s, window_start), min(e, snap.now)
        if s >= e:
            raise RangeError(RANGE_EMPTY)
        return View(start=s, end=e, key=CUSTOM)
    key = key if key in RANGES else DEFAULT_RANGE
    if key in DAILY_RANGES:
        days = _history_days(snap)
        if days is not None:
            edges, _ = days
            first = max(0, len(edges) - 1 - DAILY_RANGES[key])
            return View(start=int(edges[first]), end=snap.now, key=key)
    return View(start=max(window_start, snap.now - RANGES[key]), end=snap.now, key=key)


def is_daily(view: View) -> bool:
    return view.key in DAILY_RANGES


def _history_days(snap: Snapshot) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """The history's local midnights (one more than its days) and each day as
    'YYYY-MM-DD'; None without a history."""
    h = snap.history
    if h is None or not h.n_days:
        return None
    return _days_of(h.first, h.n_days, snap.timezone)


@functools.lru_cache(maxsize=16)
def _days_of(first: date, n_days: int, tz: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Made once per history (a render asks for them per chart and per column)."""
    from collector.history import midnights

    edges = midnights(first, n_days, tz)
    edges.setflags(write=False)
    return edges, tuple((first + timedelta(days=k)).isoformat() for k in range(n_days))


def daily_values(snap: Snapshot, key: str, view: View) -> tuple[tuple[str, ...], np.ndarray,
                                                                  list[str], np.ndarray]:
    """The history's users, each one's average `key` in use per local day of
    the view (resource-hours over the day's hours; today's over its hours so
    far), the days, and each day's resource-hours (users x days)."""
    from collector.observables import KEYS

    days = _history_days(snap)
    h = snap.history
    if days is None or h is None:
        return (), np.zeros((0, 0)), [], np.zeros((0, 0))
    edges, labels = days
    inside = np.flatnonzero((edges[:-1] >= view.start) & (edges[:-1] < view.end))
    hours = h.seconds[KEYS.index(key)][:, inside] / 3600
    lengths = (np.minimum(edges[inside + 1], snap.now) - edges[inside]) / 3600
    average = np.divide(hours, lengths, out=np.zeros_like(hours), where=lengths > 0)
    return h.users, average, [labels[i] for i in inside], hours


def local_text(epoch: int, tz: str) -> str:
    """An instant as the site's wall-clock time, as a datetime-local input wants it."""
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).strftime(LOCAL_FORMAT)


def bin_span(snap: Snapshot, view: View) -> tuple[int, int]:
    """Indices [first, last) of the bins that overlap the view."""
    b = snap.bin_seconds
    first = max(0, (view.start - snap.window_start) // b)
    last = min(snap.n_bins, math.ceil((view.end - snap.window_start) / b))
    return int(first), int(max(first, last))


def overlap_seconds(snap: Snapshot, view: View) -> np.ndarray:
    """Seconds of each bin inside the view (the last bin ends at collection time)."""
    return snap.overlap(view.start, view.end)


def _typed(values: np.ndarray) -> dict[str, str]:
    """A float32 typed array, as Plotly.js reads it: a quarter of the JSON text."""
    data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return {"dtype": "f4", "bdata": base64.b64encode(data).decode("ascii")}


def x_segments(snap: Snapshot, first: int, last: int) -> list[tuple[int, int, str]]:
    """Runs of bins [i, j) over which the site's UTC offset is constant, each
    with its first bin start as wall-clock time. Plotly has no time zones: a
    run is drawn as x0 + dx in local time, so a daylight-saving change splits
    a user's trace in two instead of sending every timestamp."""
    if last <= first:
        return []
    return list(_segments(snap.window_start, snap.bin_seconds, snap.timezone, first, last))


@functools.lru_cache(maxsize=256)
def _segments(window_start: int, bin_seconds: int, timezone: str, first: int, last: int
              ) -> tuple[tuple[int, int, str], ...]:
    """x_segments' runs, made once per window and span: every QoS of a site
    shares its bins (the export draws thousands of charts over the same ones)."""
    tz = ZoneInfo(timezone)
    local = [datetime.fromtimestamp(window_start + k * bin_seconds, tz) for k in range(first, last)]
    offsets = [t.utcoffset() for t in local]
    runs, i = [], 0
    for j in range(1, len(local) + 1):
        if j == len(local) or offsets[j] != offsets[i]:
            runs.append((first + i, first + j, local[i].strftime("%Y-%m-%d %H:%M:%S")))
            i = j
    return tuple(runs)


def _translucent(color: str, alpha: float = 0.35) -> str:
    """A '#rrggbb' colour as rgba with `alpha` (the queue's lighter fill)."""
    if len(color) == 7 and color.startswith("#"):
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgba({r},{g},{b},{alpha})"
    return color


# Up to this many points in view a trace steps from bin to bin (each bin's
# average held flat); beyond it a bin is under two pixels of a chart, the step
# and a straight line draw the same picture, and the line has half the
# vertices (a 30-day view of 100 users: the four charts' first draw 724 ->
# 600 ms in Chromium; a redraw from another view is no faster).
STEP_POINTS = 200


def line_shape(points: int) -> str:
    return "hv" if points <= STEP_POINTS else "linear"


def _user_traces(snap: Snapshot, key: str, segments: list[tuple[int, int, str]],
                 first: int, last: int, hidden: frozenset[str] | set[str],
                 colors: dict[str, str], queued: bool) -> list[dict]:
    """The stacked traces of one series, one per user (and per run of bins of
    one UTC offset); queued traces are hatched, lighter, and say 'queued'."""
    values = snap.series[key][:, first:last]
    shape = line_shape(last - first)
    traces = []
    for i, user in enumerate(snap.users):
        if not values[i].any():
            continue  # nothing in view: no trace (the legend lists every user anyway)
        color = colors.get(user) or user_color(user)
        for a, b, x0 in segments:
            row = snap.series[key][i, a:b]
            if not row.any() and len(segments) > 1:
                continue  # stacking treats a missing stretch as zero
            trace = {
                "type": "scatter", "mode": "lines", "name": user, "legendgroup": user,
                "stackgroup": "usage", "line": {"width": 0.5, "color": color, "shape": shape},
                "fillcolor": color, "y": _typed(row), "x0": x0, "dx": snap.bin_seconds * 1000,
                "hovertemplate": "%{y:.1f}", "visible": "legendonly" if user in hidden else True,
                "meta": "running",
            }
            if queued:
                trace.update({
                    "fillcolor": _translucent(color), "meta": "queued",
                    "line": {"width": 1, "color": color, "shape": shape, "dash": "dot"},
                    "fillpattern": {"shape": "/", "fgcolor": color, "fgopacity": 0.6,
                                    "size": 8, "solidity": 0.25},
                    "hovertemplate": "%{y:.1f} queued"})
            traces.append(trace)
    return traces


# What ended jobs used, laid over the held stack: a darker, hatched shade, the
# same in both themes (it darkens whatever user colour lies beneath; the
# queue's hatch leans the other way).
USED_FILL = "rgba(0, 0, 0, 0.30)"
USED_PATTERN = {"shape": "\\", "fgcolor": "rgba(0, 0, 0, 0.45)", "size": 6, "solidity": 0.3}
USED_NOTE = ("The darker part of the CPU and memory charts is what jobs used of what they held, "
             "once they have ended and Slurm recorded it: each job's CPU time spread evenly "
             "over its run, and its peak memory over the whole run. Running jobs' use is not "
             "known until they end.")


def _used_traces(snap: Snapshot, key: str, segments: list[tuple[int, int, str]], first: int,
                 last: int, hidden: frozenset[str] | set[str]) -> list[dict]:
    """Each user's used part, stacked in its own group in the held stack's
    user order, so the shade's top is what the shown users used in all."""
    values = snap.series[key][:, first:last]
    shape = line_shape(last - first)
    traces = []
    for i, user in enumerate(snap.users):
        if not values[i].any():
            continue
        for a, b, x0 in segments:
            row = snap.series[key][i, a:b]
            if not row.any() and len(segments) > 1:
                continue
            traces.append({
                "type": "scatter", "mode": "lines", "name": user, "legendgroup": user,
                "stackgroup": "used", "line": {"width": 0, "shape": shape},
                "fillcolor": USED_FILL, "fillpattern": USED_PATTERN, "y": _typed(row), "x0": x0,
                "dx": snap.bin_seconds * 1000, "hovertemplate": "%{y:.1f} used",
                "visible": "legendonly" if user in hidden else True, "meta": "used"})
    return traces


def _daily_traces(snap: Snapshot, key: str, view: View, hidden: frozenset[str] | set[str],
                  colors: dict[str, str], kind: str) -> tuple[list[dict], np.ndarray]:
    """Stacked daily averages of one series, one trace per user with any, and
    their sum per day (`kind`: running, used or queued, styled as the hourly)."""
    users, average, x, _ = daily_values(snap, key, view)
    shape = line_shape(len(x))
    traces = []
    for i, user in enumerate(users):
        if not average[i].any():
            continue
        color = colors.get(user) or user_color(user)
        trace = {"type": "scatter", "mode": "lines", "name": user, "legendgroup": user,
                 "stackgroup": "usage", "line": {"width": 0.5, "color": color, "shape": shape},
                 # Naive dates step a calendar day at a time (Plotly has no time
                 # zones), so x0 and a day's dx place every local day.
                 "fillcolor": color, "x0": x[0], "dx": 86400000, "y": _typed(average[i]),
                 "hovertemplate": "%{y:.1f} (daily average)",
                 "visible": "legendonly" if user in hidden else True, "meta": kind}
        if kind == "used":
            trace.update({"stackgroup": "used", "line": {"width": 0, "shape": shape},
                          "fillcolor": USED_FILL, "fillpattern": USED_PATTERN,
                          "hovertemplate": "%{y:.1f} used (daily average)"})
        elif kind == "queued":
            trace.update({
                "fillcolor": _translucent(color),
                "line": {"width": 1, "color": color, "shape": shape, "dash": "dot"},
                "fillpattern": {"shape": "/", "fgcolor": color, "fgopacity": 0.6, "size": 8,
                                "solidity": 0.25},
                "hovertemplate": "%{y:.1f} queued (daily average)"})
        traces.append(trace)
    return traces, average.sum(axis=0) if len(average) else np.zeros(0)


DAILY_SUFFIX = ", daily average"


def fold_view(snap: Snapshot, view: View, show: str = DEFAULT_SHOW,
              hidden: frozenset[str] | set[str] = frozenset(), top: int = 0
              ) -> tuple[Snapshot, Fold]:
    """The snapshot the four charts draw for `view`: the `top` members with the
    largest share of it and one "N others" row (app/fold.py); itself when
    `top` is 0 or there are few enough members."""
    show = show if show in SHOW_MODES else DEFAULT_SHOW
    if is_daily(view):
        days = _history_days(snap)
        if days is None:
            return snap, Fold(top=top)
        edges = days[0]
        inside = np.flatnonzero((edges[:-1] >= view.start) & (edges[:-1] < view.end))
        return fold_daily(snap, inside, show, hidden, top)
    first, last = bin_span(snap, view)
    return fold_hourly(snap, first, last, show, hidden, top)


def _daily_figure_traces(snap: Snapshot, obs: str, view: View,
                         hidden: frozenset[str] | set[str], colors: dict[str, str], show: str
                         ) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """A daily view's traces (what `show` draws) and its held and queued sums per day."""
    queue_key, use_key = queued_key(obs), used_key(obs)
    running, run_sum = _daily_traces(snap, obs, view, hidden, colors, "running")
    used, used_sum = _daily_traces(snap, use_key, view, hidden, colors, "used") \
        if use_key else ([], np.zeros_like(run_sum))
    waiting, queue_sum = _daily_traces(snap, queue_key, view, hidden, colors, "queued") \
        if queue_key else ([], np.zeros_like(run_sum))
    if len(used_sum) == len(run_sum):
        run_sum = np.maximum(run_sum, used_sum)
    if len(queue_sum) != len(run_sum):
        queue_sum = np.zeros_like(run_sum)
    traces = ([] if show == "queued" else running + used) + ([] if show == "running" else waiting)
    return traces, run_sum, queue_sum


def usage_figure(snap: Snapshot, obs: str, view: View, theme: str = "light",
                 hidden: frozenset[str] | set[str] = frozenset(),
                 colors: dict[str, str] | None = None, show: str = DEFAULT_SHOW,
                 fold: Fold = NO_FOLD) -> dict:
    """A stacked area chart of one observable, one colour per user (`colors`,
    from `assign_colors` over the site's users), with the QoS limit as a
    labelled dashed line where there is one. `show` (SHOW_MODES) draws the
    running usage, the queued demand, or the queue stacked above the running
    usage; every trace's `meta` says which it is, and the layout's `meta`
    holds the y-axis top of each mode (the static page switches in place)
    and `fold` (what fold_view folded into "N others", for the legend)."""
    colors = colors or assign_colors(snap.users)
    theme_colors = THEMES.get(theme, THEMES["light"])
    queue_key = queued_key(obs)
    show = show if show in SHOW_MODES and queue_key else DEFAULT_SHOW
    use_key = used_key(obs)
    if is_daily(view):
        traces, run_sum, queue_sum = _daily_figure_traces(snap, obs, view, hidden, colors, show)
    else:
        first, last = bin_span(snap, view)
        segments = x_segments(snap, first, last)
        # Only what is shown is built (the static page asks for both, and switches).
        running = _user_traces(snap, obs, segments, first, last, hidden, colors, False) \
            if show != "queued" else []
        waiting = _user_traces(snap, queue_key, segments, first, last, hidden, colors, True) \
            if queue_key and show != "running" else []
        used = _used_traces(snap, use_key, segments, first, last, hidden) \
            if use_key and show != "queued" else []
        traces = running + used + waiting
        run_sum = snap.series[obs][:, first:last].sum(axis=0)
        if use_key:   # a peak can pass what was held where the cluster does not enforce it
            run_sum = np.maximum(run_sum, snap.series[use_key][:, first:last].sum(axis=0))
        queue_sum = snap.series[queue_key][:, first:last].sum(axis=0) if queue_key else \
            np.zeros_like(run_sum)
    peaks = {"running": float(run_sum.max(initial=0)), "queued": float(queue_sum.max(initial=0)),
             "both": float((run_sum + queue_sum).max(initial=0))}
    limit = snap.thresholds.get(obs)
    shapes = limit_shapes(snap, obs, view, theme_colors["limit"])
    annotations = []
    if limit:
        annotations.append({"xref": "paper", "x": 1, "xanchor": "right", "yref": "y",
                            "y": limit, "yanchor": "bottom", "showarrow": False,
                            "text": f"QoS limit {limit:g}", "font": {"color": theme_colors["limit"]}})
    if not traces:
        annotations.append({"xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                            "showarrow": False, "font": {"size": 14},
                            "text": EMPTY_TEXT[show]})
    tz = ZoneInfo(snap.timezone)
    x_range = [datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S")
               for t in (view.start, view.end)]
    highest_limit = max((max(s["y0"], s["y1"]) for s in shapes), default=0)
    # The limit line is always in view, whatever is drawn.
    tops = {m: max(p, highest_limit) * 1.08 or 1 for m, p in peaks.items()}
    y_top = tops[show]
    title = observable(obs).title + {"running": "", "queued": " (queued)",
                                     "both": " (running + queued)"}[show] + \
        (DAILY_SUFFIX if is_daily(view) else "")
    return {
        "data": traces,
        "layout": {
            "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
            "meta": {"y_top": tops, "title": observable(obs).title,
                     "suffix": DAILY_SUFFIX if is_daily(view) else "", "fold": fold.meta()},
            "showlegend": False, "hovermode": "x unified",
            "margin": {"l": 55, "r": 15, "t": 40, "b": 35}, "height": 330,
            "paper_bgcolor": theme_colors["paper"], "plot_bgcolor": theme_colors["plot"],
            "font": {"color": theme_colors["font"], "size": 12},
            "xaxis": {"type": "date", "range": x_range, "gridcolor": theme_colors["grid"]},
            "yaxis": {"title": {"text": observable(obs).unit}, "rangemode": "tozero", "range": [0, y_top],
                      "gridcolor": theme_colors["grid"], "zerolinecolor": theme_colors["grid"]},
            "shapes": shapes, "annotations": annotations,
            # Zoom and hidden traces survive a data refresh; a new range resets the zoom.
            "uirevision": f"{snap.cluster}|{snap.qos}|{view.key}|"
                          f"{view.start if view.key == CUSTOM else ''}",
        },
    }


def limit_shapes(snap: Snapshot, obs: str, view: View, color: str) -> list[dict]:
    """The QoS limit as dashed lines: one across the chart when it held all
    along, else one per step in view (a step where the limit changed)."""
    steps = snap.limit_steps(obs)
    line = {"color": color, "dash": "dash", "width": 1.5}
    if len(steps) == 1:
        value = steps[0][1]
        return [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": value,
                 "y1": value, "line": line}] if value else []
    shapes = []
    ends = [t for t, _ in steps[1:]] + [snap.now]
    previous = None
    for (t0, value), t1 in zip(steps, ends, strict=True):
        a, b = max(t0, view.start), min(t1, view.end)
        if value and previous and view.start < t0 <= view.end:
            # The riser where the limit changed, so the segments read as one line.
            x = local_text(t0, snap.timezone)
            shapes.append({"type": "line", "xref": "x", "yref": "y", "x0": x, "x1": x,
                           "y0": previous, "y1": value, "line": line})
        if value and b > a:
            shapes.append({"type": "line", "xref": "x", "yref": "y", "y0": value, "y1": value,
                           "x0": local_text(a, snap.timezone), "x1": local_text(b, snap.timezone),
                           "line": line})
        previous = value
    return shapes


def empty_figure(text: str, theme: str = "light") -> dict:
    """A blank chart carrying a message (no data for this QoS)."""
    c = THEMES.get(theme, THEMES["light"])
    return {"data": [], "layout": {
        "height": 330, "paper_bgcolor": c["paper"], "plot_bgcolor": c["plot"],
        "font": {"color": c["font"]}, "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "annotations": [{"text": text, "showarrow": False, "xref": "paper", "yref": "paper",
                         "x": 0.5, "y": 0.5}]}}


def _share(amount: float, limit: float | None, hours: float = 1.0) -> float | None:
    if not limit:
        return None
    return 100.0 * amount / (limit * hours)


def current_rows(snap: Snapshot, users_of: Snapshot | None = None) -> list[dict[str, object]]:
    """What each user's (or group's) running jobs hold at collection time,
    busiest first, then a total: that of `users_of` when given (total_rows)."""
    rows = []
    for i, user in enumerate(snap.users):
        cur = {o: float(snap.current[o][i]) for o in CHART_KEYS}
        if not any(cur.values()):
            continue
        rows.append(_usage_row(user, cur, snap.thresholds))
    rows.sort(key=lambda r: (-float(r["NCPUS"]), str(r["user"])))  # type: ignore[arg-type]
    total = {o: float((users_of or snap).current[o].sum()) for o in CHART_KEYS}
    return [*rows, _usage_row("Total", total, snap.thresholds, is_total=True)]


def total_rows(snap: Snapshot, view: View, users_of: Snapshot | None = None
               ) -> list[dict[str, object]]:
    """Resource-hours per user (or group) over the view (partial bins weighted
    by their overlap), with each one's share of what the limit allows in that
    time. The Total row sums `users_of` when given: a grouped table's total is
    the users' total to the last digit (the groups' series are stored rounded
    on their own, so their sum can differ from the users' in the last place)."""
    hours = view.hours or 1.0
    users, amounts = _view_amounts(snap, view)
    rows = []
    for i, user in enumerate(users):
        used = {o: float(amounts[o][i]) for o in CHART_KEYS}
        if any(used.values()):
            rows.append(_usage_row(user, used, snap.thresholds, hours=hours))
    rows.sort(key=lambda r: (-float(r["NCPUS"]), str(r["user"])))  # type: ignore[arg-type]
    if users_of is not None and users_of is not snap:
        amounts = _view_amounts(users_of, view)[1]
    total = {o: float(amounts[o].sum()) for o in CHART_KEYS}
    return [*rows, _usage_row("Total", total, snap.thresholds, hours=hours, is_total=True)]


def _view_amounts(snap: Snapshot, view: View) -> tuple[Sequence[str], dict[str, np.ndarray]]:
    """The names and their resource-hours per observable over the view."""
    if is_daily(view):   # from the daily history: the resource-hours of the days shown
        daily = {o: daily_values(snap, o, view) for o in CHART_KEYS}
        users = daily["NCPUS"][0]
        return users, {o: daily[o][3].sum(axis=1) if len(daily[o][3]) else np.zeros(len(users))
                       for o in CHART_KEYS}
    seconds = overlap_seconds(snap, view)
    return snap.users, {o: snap.series[o] @ seconds / 3600 for o in CHART_KEYS}


def _usage_row(user: str, amounts: dict[str, float], limits: dict[str, float | None],
               hours: float = 1.0, is_total: bool = False) -> dict[str, object]:
    row: dict[str, object] = {"user": user, "is_total": is_total}
    for o in CHART_KEYS:
        row[o] = amounts[o]
        row[f"{o}_share"] = _share(amounts[o], limits.get(o), hours)
    return row


# --- the page's texts: built here once, for the Dash page and the static export ---

STALE_TEXT = ("The data for {qos} is stale: last collected {age} ({updated}); "
              "the collector runs every {interval} min.")
TOTAL_TITLE = "Total usage, {start} to {end} ({hours} h)"


def range_fallback(error: str) -> str:
    """Below the range controls when a custom range cannot be shown."""
    return f"{error}; showing the last {DEFAULT_RANGE}."


def empty_qos_message(snap: Snapshot) -> str:
    """The message of a tab whose QoS ran no job in the whole window."""
    days = snap.n_bins * snap.bin_seconds // 86400
    return f"No jobs ran in {snap.qos} in the last {days} days."


def total_title(snap: Snapshot, view: View) -> str:
    """The heading of the total-usage table: the span it sums."""
    start = local_text(view.start, snap.timezone).replace("T", " ")
    end = local_text(view.end, snap.timezone).replace("T", " ")
    return TOTAL_TITLE.format(start=start, end=end, hours=f"{view.hours:.0f}")


def unreadable_message(qos: str, why: str = "") -> str:
    """A tab whose snapshot cannot be read (`why` only where it may be shown)."""
    return (f"The data for {qos} cannot be read right now{f' ({why})' if why else ''}; "
            "the other tabs are not affected.")


def relative_age(seconds: float) -> str:
    """'just now', '12 min ago', '3 h ago', '2 days ago'."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


@dataclass(frozen=True)
class Freshness:
    updated: str      # the collection time, in the site's zone
    age: str          # "12 min ago"
    stale: bool       # older than three collection intervals


def freshness(snap: Snapshot, wall_now: float, interval_minutes: int) -> Freshness:
    tz = ZoneInfo(snap.timezone)
    age = max(0.0, wall_now - snap.now)
    return Freshness(
        updated=datetime.fromtimestamp(snap.now, tz).strftime("%Y-%m-%d %H:%M %Z"),
        age=relative_age(age), stale=age > 3 * interval_minutes * 60,
    )


def stale_message(qos: str, fresh: Freshness | None, failed: list[tuple[str, str, float]],
                  tz: str, interval_minutes: int, with_errors: bool = True) -> str | None:
    """The warning above the charts: old data, or a step of the last run that
    failed (from the status file); None when all is well."""
    parts = []
    if fresh is not None and fresh.stale:
        parts.append(STALE_TEXT.format(qos=qos, age=fresh.age, updated=fresh.updated,
                                       interval=interval_minutes))
    for step, error, when in failed:
        stamp = datetime.fromtimestamp(when, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")
        parts.append(f"The last {step} failed at {stamp}" + (f": {error}" if with_errors else "."))
    return " ".join(parts) or None


def daily_note(snap: Snapshot) -> str:
    """What the page says above daily charts: how they are made, and whether
    the history is still being filled in."""
    h = snap.history
    if h is None or not h.complete_from:
        return DAILY_NOTE
    day = datetime.fromtimestamp(h.complete_from, ZoneInfo(snap.timezone))
    return f"{DAILY_NOTE} {DAILY_FILLING.format(day=f'{day:%-d %b %Y}')}"
