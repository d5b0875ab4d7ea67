"""`librarian export --out DIR`: the dashboard as a static site, for GitHub Pages or any web server.

The figures and tables are pre-computed in Python with the dashboard's own
functions (app/figures.py) for every QoS and range preset, and written as
JSON beside a small page (app/static_site/) that draws them with the bundled
Plotly and Bootstrap: no second copy of the figure logic, no CDN. A custom
range reuses the 30-day figures, zoomed, and its totals are summed in the
browser from those same values. Files are rewritten only when their bytes
change, so a new snapshot changes only the data files.
"""

from __future__ import annotations

import functools
import html
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import plotly

from app import ASSETS
from app.alerts import load_state as load_alerts
from app.alerts import page_lines
from app.efficiency_view import EFFICIENCY_COLUMNS, EFFICIENCY_NOTE, efficiency_table
from app.figures import (
    DAILY_NOTE,
    DAILY_RANGES,
    DEFAULT_RANGE,
    DEFAULT_SHOW,
    RANGE_EMPTY,
    RANGES,
    SHOW_MODES,
    STALE_TEXT,
    THEMES,
    TOTAL_TITLE,
    USED_NOTE,
    current_rows,
    daily_note,
    empty_qos_message,
    freshness,
    local_text,
    range_fallback,
    resolve_view,
    stale_message,
    total_rows,
    total_title,
    unreadable_message,
    usage_figure,
)
from app.history_view import (
    MONTH_COLUMNS,
    MONTH_NOTE,
    USER_MONTH_COLUMNS,
    month_figure,
    month_rows,
    user_month_rows,
)
from app.overview_view import OVERVIEW_COLUMNS, OVERVIEW_NOTE, TABS_UP_TO, overview_table
from app.privacy import anonymize, shown_name, top_users
from app.queue_view import (
    PRESSURE_COLUMNS,
    QUEUE_COLUMNS,
    WAIT_COLUMNS,
    WAIT_INFERENCE,
    limit_sentences,
    pressure_figure,
    pressure_rows,
    queue_note,
    queue_table,
    wait_figure,
    wait_rows,
)
from app.tables import CURRENT_COLUMNS, TOTAL_COLUMNS, download_stem, table_spec
from app.urlstate import UrlState
from collector.checked import INDEX, Entry, read_index
from collector.config import Config, Panel
from collector.config_model import EfficiencyConfig
from collector.jobtable import GROUPINGS
from collector.observables import CHART_KEYS, OBSERVABLES
from collector.overview import read_overview
from collector.palette import assign_colors, user_color
from collector.snapshot import (
    Snapshot,
    SnapshotError,
    read_snapshot,
    snapshot_path,
    snapshot_users,
)
from collector.status import failures, read_status

SITE = Path(__file__).resolve().parent / "static_site"
DEFAULT_RULES = EfficiencyConfig()
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@dataclass(frozen=True)
class Privacy:
    key: bytes | None = None   # anonymize with this key when set
    top_users: int = 0


@dataclass
class ExportReport:
    out: Path
    written: list[Path] = field(default_factory=list)   # files whose bytes changed
    errors: dict[str, str] = field(default_factory=dict)  # QoS -> why it has no data


def qos_data(snap: Snapshot, colors: dict[str, str], wall_now: float, interval_minutes: int,
             rules: EfficiencyConfig = DEFAULT_RULES) -> dict:
    """Everything the static page shows for one QoS (pure)."""
    shown = {key: resolve_view(snap, key) for key in RANGES}   # the same for every grouping
    views = {}
    for key, view in shown.items():
        views[key] = {
            "start": local_text(view.start, snap.timezone), "end": local_text(view.end, snap.timezone),
            "hours": view.hours,
            # Running and queued traces both (each trace's `meta` says which): the
            # page's running / queued / both switch shows or hides them in place.
            "figures": [usage_figure(snap, o, view, "light", colors=colors, show="both")
                        for o in CHART_KEYS],
            "totals": total_rows(snap, view), "title": total_title(snap, view),
            "pressure": pressure_rows(snap, view), "pressure_figure": pressure_figure(snap, view),
            "waits": wait_rows(snap, view), "wait_figure": wait_figure(snap, view),
            "efficiency": efficiency_table(snap, view, rules),
            "stem": download_stem(snap.site, snap.qos, key),
        }
    f = freshness(snap, wall_now, interval_minutes)
    # The charts, usage tables and months per account and per partition: what
    # the page swaps in for the users' when grouped so (the rest stays per user).
    groups = {}
    for by in GROUPINGS[1:]:
        g = snap.grouped(by)
        if g is snap:
            continue
        g_colors = assign_colors(g.users)
        groups[by] = {
            "users": list(g.users), "colors": g_colors, "current": current_rows(g, users_of=snap),
            "user_months": user_month_rows(g),
            "views": {key: {"figures": [usage_figure(g, o, view, "light", colors=g_colors,
                                                     show="both") for o in CHART_KEYS],
                            "totals": total_rows(g, view, users_of=snap),
                            "stem": download_stem(snap.site, snap.qos, key, by)}
                      for key, view in shown.items()},
        }
    return {
        "qos": snap.qos, "site": snap.site, "timezone": snap.timezone, "now": snap.now,
        "updated": f.updated, "window_start": local_text(snap.window_start, snap.timezone),
        "window_end": local_text(snap.now, snap.timezone), "bin_seconds": snap.bin_seconds,
        "users": list(snap.users), "colors": {u: colors[u] for u in snap.users},
        "limits": {o: snap.thresholds.get(o) for o in CHART_KEYS}, "cluster": snap.cluster,
        # The page's texts for this QoS, made by the Dash page's own functions;
        # the page fills in only what it knows at viewing time ({age}; a custom span).
        "empty_message": empty_qos_message(snap) if not snap.users else "",
        "stale_text": STALE_TEXT.format(qos=snap.qos, updated=f.updated, age="{age}",
                                        interval=interval_minutes),
        "current": current_rows(snap), "views": views,
        "limit_sentences": limit_sentences(snap), "queue": queue_table(snap),
        "queue_note": queue_note(snap),
        # Month by month (range-independent: from the daily history).
        "months": month_rows(snap), "user_months": user_month_rows(snap),
        "month_figure": month_figure(snap),
        "daily_note": daily_note(snap),
        "groups": groups,
    }


def static_csp(page: str) -> str:
    """The page's Content-Security-Policy (a meta tag: static hosts such as
    GitHub Pages set no headers): this origin's scripts and the hash of the
    inline theme script only. frame-ancestors cannot be set from a meta tag."""
    import re

    from app.security import content_security_policy, script_hash

    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    policy = content_security_policy([script_hash(s) for s in inline])
    return "; ".join(p for p in policy.split("; ") if not p.startswith("frame-ancestors"))


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write `path` unless it holds `data` already; whether it was written."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


@functools.lru_cache(maxsize=4)
def _index(data_dir: Path, stamp: tuple[int, int]) -> dict[str, Entry]:
    """The data folder's index (checked.json), read once per change (its
    size and mtime in `stamp`), not once per snapshot: the forked processes
    start with it."""
    return read_index(data_dir)


def _index_now(data_dir: Path) -> dict[str, Entry]:
    try:
        st = os.stat(data_dir / INDEX)
    except OSError:
        return {}
    return _index(data_dir, (st.st_size, st.st_mtime_ns))


def _snapshot(config: Config, panel: Panel, privacy: Privacy) -> Snapshot | str:
    """One panel's snapshot as the export shows it (folded, pseudonymised), or
    why it cannot be read (the data folder left out of the message)."""
    try:
        snap = read_snapshot(snapshot_path(config.site.data_dir, panel.qos, panel.file_cluster),
                             _index_now(config.site.data_dir))
    except SnapshotError as err:
        return str(err).replace(str(config.site.data_dir) + os.sep, "")
    if privacy.top_users:
        snap = top_users(snap, privacy.top_users)
    if privacy.key is not None:
        snap = anonymize(snap, privacy.key)
    return snap


def _users(args: tuple[Config, Panel, Privacy]) -> tuple[str, ...] | str:
    """The users a QoS's export shows (for the colours): read from the file
    alone unless the top users are kept (that takes the series)."""
    config, panel, privacy = args
    if privacy.top_users:
        snap = _snapshot(*args)
        return snap if isinstance(snap, str) else snap.users
    try:
        users = snapshot_users(snapshot_path(config.site.data_dir, panel.qos, panel.file_cluster))
    except SnapshotError as err:
        return str(err).replace(str(config.site.data_dir) + os.sep, "")
    key = privacy.key
    return users if key is None else tuple(shown_name(u, key) for u in users)


def _qos_file(args: tuple[Config, Panel, Privacy, dict[str, str], float, Path]) -> bool | str:
    """Write one QoS's data file (in the process that made it: at 500 QoS
    the files are a gigabyte); whether it changed, or why its snapshot
    cannot be read (a collector may have replaced it since the first look:
    a new user gets the colour of their name)."""
    config, panel, privacy, colors, wall_now, path = args
    snap = _snapshot(config, panel, privacy)
    if isinstance(snap, str):
        return snap
    colors = {u: colors.get(u) or user_color(u) for u in snap.users}
    return _write_if_changed(path, _dump(qos_data(snap, colors, wall_now,
                                                  config.app.collect_interval_minutes,
                                                  config.efficiency)))


def _dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


# More QoS than this: the per-QoS files are made on two forked processes.
POOL_FROM = 8


def _each(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """fn over items, in order: on a pool of forked processes (each reads its
    own snapshot, so the parent never holds them all) when there are many."""
    if len(items) < POOL_FROM:
        return [fn(i) for i in items]
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("fork")) as pool:
        return list(pool.map(fn, items, chunksize=8))


def export_site(config: Config, out: Path, privacy: Privacy = Privacy(),
                wall_now: float | None = None, keys: Sequence[str] | None = None
                ) -> ExportReport:
    """Write the static site into `out` (created if needed): of every QoS, or
    of those in `keys` alone (a group's own site: nothing of the others, not
    even a name, and the last run's errors without their text, which can
    quote other QoS)."""
    wall_now = time.time() if wall_now is None else wall_now
    report = ExportReport(out=out)
    unknown = sorted(set(keys or ()) - {p.key for p in config.panels})
    if unknown:
        raise ValueError(f"no such QoS to export: {', '.join(unknown)}")
    panels = [p for p in config.panels if keys is None or p.key in keys]
    users: dict[str, tuple[str, ...]] = {}
    _index_now(config.site.data_dir)   # read here, once: the forked processes start with it
    for p, got in zip(panels, _each(_users, [(config, p, privacy) for p in panels]),
                      strict=True):
        if isinstance(got, str):
            report.errors[p.key] = got
        else:
            users[p.key] = got
    colors = assign_colors(u for names in users.values() for u in names)
    manifest = {
        "site": config.site.name, "qos": [p.key for p in panels],
        "labels": {p.key: p.label for p in panels},
        "refresh_seconds": config.app.refresh_seconds,
        "collect_interval_minutes": config.app.collect_interval_minutes,
        "themes": THEMES,
        # The observables (collector/observables.py): charts, columns and headers.
        "observables": [o.as_dict() for o in OBSERVABLES],
        "presets": list(RANGES), "default_range": DEFAULT_RANGE,
        "daily_ranges": list(DAILY_RANGES),
        "show_modes": list(SHOW_MODES), "default_show": DEFAULT_SHOW,
        "groupings": list(GROUPINGS),
        # Every exported QoS in one table (app/overview_view.py; counts and
        # shares, no user names), and the picker beyond a handful of QoS.
        "overview": table_spec("overview-table", OVERVIEW_COLUMNS, overview_table(
            read_overview(config.site.data_dir), [p.key for p in panels],
            {p.key: p.label for p in panels}, UrlState(panels[0].key) if panels else UrlState("")),
            download_stem(config.site.name, "all-qos", "now"), filter_hint="Filter QoS by name"),
        "tabs_up_to": TABS_UP_TO, "overview_note": OVERVIEW_NOTE,
        # Every table's columns (app/tables.py), drawn by static/tables.js as on the Dash page.
        "columns": {name: [c.spec() for c in cols] for name, cols in (
            ("current", CURRENT_COLUMNS), ("total", TOTAL_COLUMNS), ("queue", QUEUE_COLUMNS),
            ("pressure", PRESSURE_COLUMNS), ("waits", WAIT_COLUMNS),
            ("efficiency", EFFICIENCY_COLUMNS), ("month", MONTH_COLUMNS),
            ("user_month", USER_MONTH_COLUMNS))},
        "texts": {"total_title": TOTAL_TITLE, "range_fallback": range_fallback(RANGE_EMPTY),
                  "unreadable": {p.key: unreadable_message(p.label) for p in panels},
                  "wait_inference": WAIT_INFERENCE, "efficiency_note": EFFICIENCY_NOTE,
                  "used_note": USED_NOTE, "month_note": MONTH_NOTE, "daily_note": DAILY_NOTE,
                  "custom_queue_parts": "Limit pressure, waits and efficiency: the last 30 days "
                                        "(a custom range is drawn in the charts and the total "
                                        "table)."},
        # Which QoS have no data, never why: a reason can quote a user name.
        "errors": dict.fromkeys(report.errors, "unreadable"),
        # Steps of the last run that failed (collector/status.py); errors only in private copies.
        "failures": [stale_message("", None, [f], config.site.timezone, 0,
                                   with_errors=privacy.key is None and keys is None)
                     for f in failures(read_status(config.site.data_dir))],
        # The alerts in force per QoS (app/alerts.py); members unnamed in anonymised copies.
        "alerts": {p.key: page_lines(load_alerts(config.site.data_dir), p.qos,
                                     with_names=privacy.key is None)
                   for p in panels} if config.alerts.any else {},
    }
    shown = [p for p in panels if p.key in users]
    (out / "data").mkdir(parents=True, exist_ok=True)
    files = [out / "data" / f"{p.key}.json" for p in shown]
    done = _each(_qos_file, [(config, p, privacy, {u: colors[u] for u in users[p.key]},
                              wall_now, path) for p, path in zip(shown, files, strict=True)])
    for p, path, got in zip(shown, files, done, strict=True):
        if isinstance(got, str):
            report.errors[p.key] = got
        elif got:
            report.written.append(path)

    def write(path: Path, data: bytes) -> None:
        if _write_if_changed(path, data):
            report.written.append(path)

    write(out / "data" / "manifest.json", _dump(manifest))
    page = (SITE / "index.html").read_text().replace("{{SITE}}", html.escape(config.site.name))
    page = page.replace("{{CSP}}", static_csp(page))
    write(out / "index.html", page.encode())
    for src, dest in ((SITE / "site.js", "static/site.js"), (ASSETS / "tables.js", "static/tables.js"),
                      (ASSETS / "0-bootstrap.min.css", "static/bootstrap.min.css"),
                      (ASSETS / "librarian.css", "static/librarian.css"),
                      (PLOTLY_JS, "static/plotly.min.js")):
        write(out / dest, src.read_bytes())
    return report


def copy_tree(src: Path, dest: Path) -> None:
    """Mirror `src` into `dest` (local copy target): new and changed files, stale ones removed."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    for rel in wanted:
        target = dest / rel
        data = (src / rel).read_bytes()
        if not target.exists() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
    for p in dest.rglob("*"):
        if p.is_file() and p.relative_to(dest) not in wanted and ".git" not in p.parts:
            p.unlink()
