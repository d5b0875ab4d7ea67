"""The page: header, QoS tabs, range controls, a shared legend, the 2x2 charts, two tables."""

from __future__ import annotations

from collections.abc import Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from app import ids
from app.efficiency_view import EFFICIENCY_NOTE
from app.figures import (
    DEFAULT_GROUP,
    DEFAULT_RANGE,
    DEFAULT_SHOW,
    RANGES,
    SHOW_MODES,
    THEMES,
    USED_NOTE,
)
from app.history_view import MONTH_NOTE
from app.overview_view import OVERVIEW_NOTE, TABS_UP_TO
from app.queue_view import WAIT_INFERENCE
from app.urlstate import rules as url_rules
from collector.config import Config, Panel
from collector.jobtable import GROUPINGS
from collector.observables import HELD

# Before the first paint: apply the remembered colour mode, so a dark page
# never flashes white on reload. Kept tiny and free of dependencies.
THEME_BOOT_JS = ("try{var t=localStorage.getItem('librarian-theme');"
                 "if(t==='dark'||t==='light'){document.documentElement.setAttribute('data-bs-theme',t)}"
                 "}catch(e){}")
THEME_BOOT = f"<script>{THEME_BOOT_JS}</script>"  # allowed by its hash in the CSP

INDEX = """<!DOCTYPE html>
<html lang="en" data-bs-theme="light">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        """ + THEME_BOOT + """
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""


def _header(config: Config) -> html.Nav:
    # A plain Bootstrap navbar: its colours follow the page's colour mode.
    return html.Nav(
        dbc.Container([
            html.Span([html.Strong(config.site.name),
                       html.Span(" · QoS usage", className="text-body-secondary")],
                      className="navbar-brand"),
            html.Div([
                html.Span(id=ids.UPDATED, className="me-3 small"),
                dbc.Switch(id=ids.THEME_SWITCH, label="Dark", value=False, persistence=True,
                           persistence_type="local", class_name="mb-0 d-inline-block"),
            ], className="d-flex align-items-center"),
        ], fluid=True),
        className="navbar bg-body-tertiary border-bottom mb-2",
    )


def _range_controls() -> dbc.Row:
    presets = dbc.RadioItems(
        id=ids.RANGE, options=[{"label": k, "value": k} for k in RANGES], value=DEFAULT_RANGE,
        class_name="btn-group", input_class_name="btn-check",
        label_class_name="btn btn-outline-primary btn-sm",
        label_checked_class_name="active",
    )
    custom = dbc.InputGroup([
        dbc.InputGroupText("From", class_name="small"),
        dbc.Input(id=ids.FROM, type="datetime-local", size="sm"),
        dbc.InputGroupText("to", class_name="small"),
        dbc.Input(id=ids.TO, type="datetime-local", size="sm"),
        dbc.Button("Apply", id=ids.APPLY, color="primary", size="sm", n_clicks=0),
        dbc.Button("Reset", id=ids.RESET, color="secondary", outline=True, size="sm", n_clicks=0),
    ], size="sm", class_name="flex-nowrap")
    show = dbc.RadioItems(
        id=ids.SHOW, options=[{"label": m.capitalize(), "value": m} for m in SHOW_MODES],
        value=DEFAULT_SHOW, class_name="btn-group", input_class_name="btn-check",
        label_class_name="btn btn-outline-secondary btn-sm", label_checked_class_name="active",
    )
    group = dbc.RadioItems(
        id=ids.GROUP, options=[{"label": f"By {g}", "value": g} for g in GROUPINGS],
        value=DEFAULT_GROUP, class_name="btn-group", input_class_name="btn-check",
        label_class_name="btn btn-outline-secondary btn-sm", label_checked_class_name="active",
    )
    return dbc.Row([
        dbc.Col(presets, width="auto", class_name="mb-2"),
        dbc.Col(html.Div(show, title="Draw what running jobs hold, what waiting jobs ask "
                                      "for, or the queue stacked above the running usage"),
                width="auto", class_name="mb-2"),
        dbc.Col(html.Div(group, title="Stack the charts and sum the usage tables per user, "
                                      "per Slurm account or per partition"),
                width="auto", class_name="mb-2"),
        dbc.Col([custom, html.Div(id=ids.RANGE_ERROR, className="small text-danger mt-1")],
                width="auto", class_name="mb-2"),
    ], class_name="align-items-start g-3")


def downloads(target: str, what: str) -> html.Div:
    """CSV and JSON links for a chart (assets/tables.js makes the files in the
    browser from what the chart shows; a table draws its own)."""
    return html.Div([html.Button(fmt.upper(), type="button", className="btn btn-link btn-sm p-0 ms-2",
                                 title=f"Download {what} as {fmt.upper()} (unrounded numbers)",
                                 **{"data-chart-download": target, "data-format": fmt})
                     for fmt in ("csv", "json")], className="chart-downloads")


def _graph(obs: str) -> dbc.Col:
    return dbc.Col(dbc.Card([
        dcc.Graph(id=ids.graph(obs), figure={"data": [], "layout": {"height": 330}},
                  config={"displaylogo": False, "responsive": True}),
        downloads(ids.graph(obs), "the chart's visible series"),
    ], body=True, class_name="p-1"), md=6, class_name="mb-3")


def _small_graph(graph_id: str) -> list:
    return [dcc.Graph(id=graph_id, figure={"data": [], "layout": {"height": 260}},
                      config={"displaylogo": False, "responsive": True}),
            downloads(graph_id, "the chart's series")]


def _table(table_id: str, title: str, title_id: str | None = None, note_id: str | None = None,
           lg: int = 6, below: list | None = None) -> dbc.Col:
    """A card whose table assets/tables.js draws from the spec in its store."""
    heading = html.H6(title, id=title_id, className="card-title") if title_id else \
        html.H6(title, className="card-title")
    note = [html.P(id=note_id, className="small text-body-secondary mb-1")] if note_id else []
    return dbc.Col(dbc.Card(dbc.CardBody([
        heading, *note, html.Div(id=table_id, className="lib-table"), *(below or []),
    ])), lg=lg, class_name="mb-3")


def qos_prop(config: Config) -> str:
    """The QoS control's property: the tab bar's, or beyond a handful of QoS the picker's."""
    return "active_tab" if len(config.panels) <= TABS_UP_TO else "value"


def _qos_picker(config: Config, panels: Sequence[Panel]) -> dbc.Tabs | html.Div:
    """Tabs for a handful of QoS; beyond, a picker with search (the URL names
    the QoS). The kind follows the site's number of QoS (the callbacks are
    made once for it), the choices the visitor's."""
    first = panels[0].key
    if qos_prop(config) == "active_tab":
        return dbc.Tabs([dbc.Tab(label=p.label, tab_id=p.key) for p in panels],
                        id=ids.TABS, active_tab=first, class_name="mb-3")
    return html.Div([
        html.Label("QoS", htmlFor=ids.TABS, className="form-label small mb-1"),
        dcc.Dropdown(id=ids.TABS, options=[{"label": p.label, "value": p.key}
                                           for p in panels],
                     value=first, clearable=False, searchable=True,
                     placeholder="Type to find a QoS", className="qos-picker"),
    ], className="mb-3", style={"maxWidth": "28rem"})


def _overview(n_qos: int) -> html.Details:
    """Every QoS in one table, above the view; open by default when there are
    many (the page then opens on it), a strip to unfold for a few."""
    return html.Details([
        html.Summary(html.Span(f"All QoS ({n_qos})", id=ids.OVERVIEW_TITLE,
                               className="h6"), className="mb-2"),
        html.P(OVERVIEW_NOTE, className="small text-body-secondary mb-1"),
        html.Div(id=ids.OVERVIEW_TABLE, className="lib-table overview-table"),
    ], open=n_qos > TABS_UP_TO, className="card card-body mb-3 py-2", id="overview")


def build_layout(config: Config, keys: Sequence[str] | None = None) -> html.Div:
    """The page, with the QoS of `keys` (panel keys; None: every one)."""
    panels = [p for p in config.panels if keys is None or p.key in keys]
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.HIDDEN, storage_type="session", data=[]),
        dcc.Store(id=ids.REDRAW, data=None),
        dcc.Store(id=ids.THEME, data="light"),
        dcc.Store(id=ids.THEME_COLORS, data=THEMES),
        dcc.Store(id=ids.URL_RULES, data=url_rules(tuple(p.key for p in panels), {
            "url": ids.URL, "tabs": ids.TABS, "range": ids.RANGE, "apply": ids.APPLY,
            "reset": ids.RESET, "show": ids.SHOW, "group": ids.GROUP})),
        dcc.Store(id=ids.RENDERED, data=None),
        dcc.Store(id=ids.CHANGED, data=None),
        dcc.Store(id=ids.STEM, data=None), dcc.Store(id=ids.TABLES_DRAWN, data=None),
        dcc.Store(id=ids.DETAILS_DRAWN, data=None), dcc.Store(id=ids.OVERVIEW_DRAWN, data=None),
        *[dcc.Store(id=ids.spec(t), data=None) for t in ids.TABLES],
        dcc.Interval(id=ids.TICK, interval=config.app.refresh_seconds * 1000),
        _header(config),
        dbc.Container([
            dbc.Alert(id=ids.STALE, color="warning", is_open=False, class_name="py-2"),
            _overview(len(panels)),
            _qos_picker(config, panels),
            _range_controls(),
            dbc.Alert(id=ids.MESSAGE, is_open=False, class_name="py-2"),
            # Filled by the render callback; clicks are handled in assets/librarian.js.
            html.Div(id=ids.LEGEND, className="legend mb-2", role="group",
                     title="Click a user to hide or show them in every chart"),
            dbc.Alert(id=ids.LIMIT_ALERT, color="warning", is_open=False, class_name="py-2"),
            html.P(id=ids.DAILY_NOTE, className="small text-body-secondary mb-2"),
            dbc.Row([_graph(o.key) for o in HELD], class_name="g-3"),
            dbc.Row([
                _table(ids.CURRENT_TABLE, "Current usage (jobs running at collection time)"),
                _table(ids.TOTAL_TABLE, "Total usage over the visible range",
                       title_id=ids.TOTAL_TITLE),
            ], class_name="g-3"),
            html.P("Charts show each user's average allocation in each bin, stacked. "
                   "Hours are resource-hours (a job holding 4 CPUs for 2 h is 8 CPU-h); "
                   "'% limit' is the share of what the QoS limit allows (at collection time, "
                   "or over the range). Memory GB are GiB, as Slurm counts them. " + USED_NOTE,
                   className="small text-body-secondary"),
            html.H5("The queue and the limit", className="mt-2"),
            dbc.Row([
                _table(ids.QUEUE_TABLE, "Queue now", note_id=ids.QUEUE_NOTE),
                _table(ids.PRESSURE_TABLE, "Limit pressure over the visible range",
                       below=_small_graph(ids.PRESSURE_GRAPH)),
            ], class_name="g-3"),
            dbc.Row([
                dbc.Col(dbc.Card(_small_graph(ids.WAIT_GRAPH), body=True, class_name="p-1"),
                        lg=6, class_name="mb-3"),
                _table(ids.WAIT_TABLE, "Wait history over the visible range"),
            ], class_name="g-3"),
            html.P("Queued demand is what waiting jobs ask for, from Eligible to Start "
                   "(held jobs, a future begin time and dependencies are not counted; the "
                   "queue table counts them as held). " + WAIT_INFERENCE,
                   className="small text-body-secondary"),
            html.H5("Is what we hold being used?", className="mt-2"),
            dbc.Row([
                _table(ids.EFFICIENCY_TABLE, "Efficiency of the jobs that ended in the visible range",
                       lg=12),
            ], class_name="g-3"),
            html.P(EFFICIENCY_NOTE, className="small text-body-secondary"),
            html.H5("Month by month", className="mt-2"),
            dbc.Row([
                _table(ids.MONTH_TABLE, "The QoS per month (what the history holds)",
                       below=_small_graph(ids.MONTH_GRAPH)),
                _table(ids.USER_MONTH_TABLE, "This month against the last (per user, account or "
                                             "partition, as grouped above)"),
            ], class_name="g-3"),
            html.P(MONTH_NOTE, className="small text-body-secondary"),
        ], fluid=True),
    ])
