"""Thin wiring: inputs to the pure functions of app.figures and back.

Server-side: the URL <-> controls sync, the view (figures sliced to the range
on the server, so a range change sends only what is shown; the tables as
specs, app/tables.py), and the refresh tick (a stat per QoS). Client-side:
hiding users in all four charts (a click on the shared legend restyles the
charts in place and records the hidden users in a store) and the colour mode
(assets/librarian.js); drawing, sorting and downloading the tables and the
charts' series (assets/tables.js). None of these needs the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dash import ClientsideFunction, Dash, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from app import ids
from app.alerts import load_state as load_alerts
from app.alerts import page_lines
from app.data import Loaded, SnapshotStore
from app.efficiency_view import EFFICIENCY_COLUMNS, efficiency_table
from app.figures import (
    CUSTOM,
    DEFAULT_RANGE,
    RangeError,
    View,
    current_rows,
    daily_note,
    empty_figure,
    empty_qos_message,
    fold_view,
    freshness,
    is_daily,
    range_fallback,
    resolve_view,
    stale_message,
    total_rows,
    total_title,
    usage_figure,
)
from app.fold import NO_FOLD, Fold, fold_colors
from app.history_view import (
    MONTH_COLUMNS,
    USER_MONTH_COLUMNS,
    month_figure,
    month_rows,
    user_month_rows,
)
from app.layout import qos_prop
from app.overview_view import OVERVIEW_COLUMNS, overview_table
from app.queue_view import (
    PRESSURE_COLUMNS,
    QUEUE_COLUMNS,
    WAIT_COLUMNS,
    limit_sentences,
    pressure_figure,
    pressure_rows,
    queue_note,
    queue_table,
    wait_figure,
    wait_rows,
)
from app.tables import CURRENT_COLUMNS, TOTAL_COLUMNS, download_stem, grouped_columns, table_spec
from app.urlstate import UrlState, parse_search
from collector.config import Config
from collector.observables import CHART_KEYS
from collector.palette import OTHERS_COLOR, assign_colors, user_color
from collector.status import failures, read_status

GRAPHS = [ids.graph(o) for o in CHART_KEYS]


@dataclass(frozen=True)
class Seen:
    """What a request's URL shows: the QoS's snapshot (or why not), the
    view, the grouping and the downloads' file-name stem."""

    state: UrlState
    loaded: Loaded
    view: View | None = None
    range_error: str = ""
    by: str = "user"
    stem: str = ""


def _legend(users: tuple[str, ...], hidden: set[str], colors: dict[str, str],
            fold: Fold = NO_FOLD) -> list[html.Button | html.Span]:
    """One toggle per user, in the user's colour; assets/librarian.js handles the
    clicks. Members the charts fold into "N others" are marked so, and the
    others row has its own (non-toggle) entry."""
    folded = set(fold.folded)
    items: list[html.Button | html.Span] = [html.Button(
        [html.Span(className="swatch", style={"backgroundColor": colors.get(u) or user_color(u)}), u],
        type="button",
        className="legend-item" + (" off" if u in hidden else "") + (" folded" if u in folded else ""),
        title=f"drawn in '{fold.others}'" if u in folded else None,
        **{"data-user": u, "aria-pressed": "false" if u in hidden else "true"},
    ) for u in users]
    if fold.others:
        items.append(html.Span(
            [html.Span(className="swatch", style={"backgroundColor": OTHERS_COLOR}), fold.others],
            className="legend-others",
            title=f"the charts draw the {fold.top} largest in this view; the rest are summed here "
                  "(app.chart_top)"))
    return items


def register_callbacks(app: Dash, config: Config, store: SnapshotStore,
                       visible: Callable[[], tuple[str, ...]] | None = None) -> None:
    """The page's callbacks. `visible` gives the QoS of the request's visitor
    (app/security.py; None: every QoS): each callback answers from them alone."""
    every = tuple(p.key for p in config.panels)
    mine = visible or (lambda: every)
    restricted = bool(config.app.access)
    labels = {p.key: p.label for p in config.panels}
    picker = qos_prop(config)   # the tab bar's active_tab, or the picker's value

    # The URL sync runs in the browser (assets/librarian.js syncUrl): a click
    # costs no round trip before the render callback; the rules it reads and
    # writes by are app/urlstate.py's own.
    app.clientside_callback(
        ClientsideFunction(namespace="librarian", function_name="syncUrl"),
        Output(ids.URL, "search"), Output(ids.TABS, picker), Output(ids.RANGE, "value"),
        Output(ids.FROM, "value"), Output(ids.TO, "value"), Output(ids.SHOW, "value"),
        Output(ids.GROUP, "value"),
        Input(ids.URL, "search"), Input(ids.TABS, picker), Input(ids.RANGE, "value"),
        Input(ids.APPLY, "n_clicks"), Input(ids.RESET, "n_clicks"), Input(ids.SHOW, "value"),
        Input(ids.GROUP, "value"), State(ids.URL_RULES, "data"),
        State(ids.FROM, "value"), State(ids.TO, "value"),
    )

    def seen(search: str | None) -> Seen:
        state = parse_search(search, mine())
        loaded = store.load(state.qos)
        snap = loaded.snapshot
        if snap is None:
            return Seen(state, loaded)
        range_error = ""
        try:
            view = resolve_view(snap, state.range, state.start, state.end)
        except RangeError as err:
            range_error = range_fallback(str(err))
            view = resolve_view(snap, DEFAULT_RANGE)
        # The charts, the usage tables and the months per user, account or
        # partition; the queue, waits and efficiency stay per user.
        by = state.group if state.group in snap.groups else "user"   # (an older snapshot)
        shown = DEFAULT_RANGE if range_error else state.range
        stem = download_stem(config.site.name, state.qos,
                             f"{state.start}-to-{state.end}" if shown == CUSTOM else shown, by)
        return Seen(state, loaded, view, range_error, by, stem)

    # What a range change redraws first: the four charts and what sits with
    # them. The parts below them (queue, pressure, waits, efficiency, months)
    # follow in a second callback chained on RENDERED, so their drawing is
    # not in the way of the charts' (bench/dashboard_bench.py).
    @app.callback(
        *[Output(g, "figure") for g in GRAPHS],
        Output(ids.spec(ids.CURRENT_TABLE), "data"), Output(ids.spec(ids.TOTAL_TABLE), "data"),
        Output(ids.TOTAL_TITLE, "children"),
        Output(ids.LEGEND, "children"),
        Output(ids.MESSAGE, "children"), Output(ids.MESSAGE, "is_open"), Output(ids.MESSAGE, "color"),
        Output(ids.RANGE_ERROR, "children"), Output(ids.RENDERED, "data"),
        Output(ids.LIMIT_ALERT, "children"), Output(ids.LIMIT_ALERT, "is_open"),
        Output(ids.STEM, "data"), Output(ids.DAILY_NOTE, "children"),
        Input(ids.URL, "search"), Input(ids.CHANGED, "data"), Input(ids.REDRAW, "data"),
        State(ids.HIDDEN, "data"), State(ids.THEME_SWITCH, "value"),
    )
    def render(search, _changed, _redraw, hidden, dark):
        theme = "dark" if dark else "light"
        v = seen(search)
        rendered = {"qos": v.state.qos, "version": v.loaded.version}
        snap, view = v.loaded.snapshot, v.view
        if snap is None or view is None:
            empty = empty_figure("No data", theme)
            return (*[empty] * 4, None, None, "Total usage over the visible range", [],
                    v.loaded.error, True, "danger", "", rendered, "", False, None, "")
        grouped = snap.grouped(v.by)
        hidden_set = set(hidden or []) & set(grouped.users)
        colors = store.colors() if grouped is snap else assign_colors(grouped.users)
        # The charts draw the largest members of the view and one "N others".
        drawn, fold = fold_view(grouped, view, v.state.show, hidden_set, config.app.chart_top)
        drawn_colors = fold_colors(colors, fold)
        figures = [usage_figure(drawn, o, view, theme, hidden_set, drawn_colors, v.state.show, fold)
                   for o in CHART_KEYS]
        if snap.users:
            message, show, color = "", False, "info"
        else:
            message, show, color = empty_qos_message(snap), True, "info"
        sentences = limit_sentences(snap)
        return (*figures,
                table_spec(ids.CURRENT_TABLE, grouped_columns(CURRENT_COLUMNS, v.by),
                           current_rows(grouped, users_of=snap), v.stem),
                table_spec(ids.TOTAL_TABLE, grouped_columns(TOTAL_COLUMNS, v.by),
                           total_rows(grouped, view, users_of=snap), v.stem),
                total_title(snap, view), _legend(grouped.users, hidden_set, colors, fold),
                message, show, color, v.range_error, rendered,
                [html.Div(t) for t in sentences], bool(sentences),
                v.stem, daily_note(snap) if is_daily(view) else "")

    @app.callback(
        Output(ids.spec(ids.QUEUE_TABLE), "data"), Output(ids.QUEUE_NOTE, "children"),
        Output(ids.spec(ids.PRESSURE_TABLE), "data"), Output(ids.PRESSURE_GRAPH, "figure"),
        Output(ids.spec(ids.WAIT_TABLE), "data"), Output(ids.WAIT_GRAPH, "figure"),
        Output(ids.spec(ids.EFFICIENCY_TABLE), "data"),
        Output(ids.spec(ids.MONTH_TABLE), "data"), Output(ids.spec(ids.USER_MONTH_TABLE), "data"),
        Output(ids.MONTH_GRAPH, "figure"),
        Input(ids.RENDERED, "data"), State(ids.URL, "search"), State(ids.THEME_SWITCH, "value"),
        # After each render (its RENDERED), not beside the first one.
        prevent_initial_call=True,
    )
    def details(rendered, search, dark):
        """The view's parts below the charts, for the URL as it is now."""
        if rendered is None:
            # Dash calls it at page load, before render (their inputs make a
            # loop through tick): nothing to draw below charts not drawn yet.
            raise PreventUpdate
        theme = "dark" if dark else "light"
        v = seen(search)
        snap, view = v.loaded.snapshot, v.view
        if snap is None or view is None:
            empty = empty_figure("No data", theme)
            return None, "", None, empty, None, empty, None, None, None, empty

        def spec(table: str, columns, rows):
            return table_spec(table, columns, rows, v.stem)

        return (spec(ids.QUEUE_TABLE, QUEUE_COLUMNS, queue_table(snap)), queue_note(snap),
                spec(ids.PRESSURE_TABLE, PRESSURE_COLUMNS, pressure_rows(snap, view)),
                pressure_figure(snap, view, theme),
                spec(ids.WAIT_TABLE, WAIT_COLUMNS, wait_rows(snap, view)),
                wait_figure(snap, view, theme),
                spec(ids.EFFICIENCY_TABLE, EFFICIENCY_COLUMNS,
                     efficiency_table(snap, view, config.efficiency)),
                spec(ids.MONTH_TABLE, MONTH_COLUMNS, month_rows(snap)),
                spec(ids.USER_MONTH_TABLE, grouped_columns(USER_MONTH_COLUMNS, v.by),
                     user_month_rows(snap.grouped(v.by))),
                month_figure(snap, theme))

    @app.callback(
        Output(ids.spec(ids.OVERVIEW_TABLE), "data"),
        Input(ids.TICK, "n_intervals"),
    )
    def overview(_n):
        """Every QoS's row (one small file, re-read when it changed); each links
        to its view. Not an input of the URL: a range change costs no request
        for it; the page keeps the rest of the view when a link is followed
        (assets/librarian.js)."""
        keys = mine()
        rows = overview_table(store.overview(), keys, labels, parse_search(None, keys))
        return table_spec(ids.OVERVIEW_TABLE, OVERVIEW_COLUMNS, rows,
                          download_stem(config.site.name, "all-qos", "now"),
                          filter_hint="Filter QoS by name")

    # Each callback's tables are drawn as soon as its own specs arrive: Dash
    # holds a callback while any of its inputs is still to come, so one
    # drawing of every table waited for the slowest, and the overview at the
    # top of the page for the whole view (500 QoS: 0.7 -> 2.6 s).
    app.clientside_callback(
        ClientsideFunction(namespace="tables", function_name="draw"),
        Output(ids.TABLES_DRAWN, "data"),
        Input(ids.STEM, "data"), *[Input(ids.spec(t), "data") for t in ids.VIEW_TABLES],
    )
    for drawn, tables in ((ids.DETAILS_DRAWN, ids.DETAIL_TABLES),
                          (ids.OVERVIEW_DRAWN, (ids.OVERVIEW_TABLE,))):
        app.clientside_callback(
            ClientsideFunction(namespace="tables", function_name="drawSpecs"),
            Output(drawn, "data"), *[Input(ids.spec(t), "data") for t in tables],
        )

    @app.callback(
        Output(ids.CHANGED, "data"), Output(ids.UPDATED, "children"),
        Output(ids.STALE, "children"), Output(ids.STALE, "is_open"),
        Input(ids.TICK, "n_intervals"), Input(ids.RENDERED, "data"), State(ids.URL, "search"),
        # Not at page load: render would wait for it (it reads CHANGED); the
        # first render's RENDERED calls it straight after.
        prevent_initial_call=True,
    )
    def tick(_n, rendered, search):
        """Every refresh: one stat; the view redraws only if the shown snapshot
        was replaced since it was drawn (compared with what render used, so a
        file that lands while the page loads is not missed)."""
        if rendered is None:   # called at page load before render, which waits for it
            raise PreventUpdate
        keys = mine()
        state = parse_search(search, keys)
        failed = failures(read_status(config.site.data_dir))
        changed = no_update
        if rendered and rendered.get("qos") in keys:
            current = store.version(rendered["qos"])
            if current != rendered.get("version"):
                changed = current
        loaded = store.load(state.qos)
        f = None
        if loaded.snapshot is None:
            updated = "no data"
        else:
            f = freshness(loaded.snapshot, time.time(), config.app.collect_interval_minutes)
            updated = html.Span([f"Updated {f.updated} ", html.Span(f"({f.age})", className="text-body-secondary")])
        # A step's error can quote other groups' QoS (sacct's --qos): with an
        # access map, only visitors who see every QoS read it.
        warning = stale_message(state.qos, f, failed, config.site.timezone,
                                config.app.collect_interval_minutes,
                                with_errors=not restricted or len(keys) == len(every))
        alerts_now = page_lines(load_alerts(config.site.data_dir), state.qos) \
            if config.alerts.any else []
        if alerts_now:
            warning = " ".join([*([warning] if warning else []), *alerts_now])
        return changed, updated, warning or "", warning is not None

    app.clientside_callback(
        ClientsideFunction(namespace="librarian", function_name="applyTheme"),
        Output(ids.THEME, "data"),
        Input(ids.THEME_SWITCH, "value"), State(ids.THEME_COLORS, "data"),
        *[State(g, "id") for g in (*GRAPHS, ids.PRESSURE_GRAPH, ids.WAIT_GRAPH, ids.MONTH_GRAPH)],
    )

