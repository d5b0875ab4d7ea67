"""Component ids, in one place (layout, callbacks and tests use these)."""

URL = "url"
HIDDEN = "hidden-users"
REDRAW = "chart-redraw"     # a legend click on folded charts asks the server for a new fold
THEME = "theme"
THEME_COLORS = "theme-colors"   # app/figures.py THEMES, for the client-side theme switch
RENDERED = "rendered-version"   # the snapshot version the page shows (written by render)
CHANGED = "changed-version"     # a newer version found by the refresh tick
TICK = "refresh-tick"

THEME_SWITCH = "theme-switch"
UPDATED = "updated"
STALE = "stale-alert"
TABS = "qos-tabs"
RANGE = "range-preset"
FROM = "range-from"
TO = "range-to"
APPLY = "range-apply"
RESET = "range-reset"
RANGE_ERROR = "range-error"
MESSAGE = "qos-message"
LEGEND = "legend"
CURRENT_TABLE = "current-table"
TOTAL_TABLE = "total-table"
TOTAL_TITLE = "total-title"


def graph(obs: str) -> str:
    return f"graph-{obs.lower()}"

SHOW = "show-mode"               # running / queued / both
GROUP = "group-by"               # user / account / partition
URL_RULES = "url-rules"          # what the browser's URL sync reads and writes by
LIMIT_ALERT = "limit-alert"      # "avery holds 39 of 39 GPUs ..."
QUEUE_TABLE = "queue-table"
QUEUE_NOTE = "queue-note"
PRESSURE_TABLE = "pressure-table"
PRESSURE_GRAPH = "pressure-graph"
WAIT_TABLE = "wait-table"
EFFICIENCY_TABLE = "efficiency-table"
WAIT_GRAPH = "wait-graph"
MONTH_TABLE = "month-table"            # the QoS per month: hours, share of the limit
USER_MONTH_TABLE = "user-month-table"  # each user, this month against the last
MONTH_GRAPH = "month-graph"
DAILY_NOTE = "daily-note"             # said above the charts of a range over 30 days
OVERVIEW_TABLE = "overview-table"     # every QoS, one row each (app/overview_view.py)
OVERVIEW_TITLE = "overview-title"
VIEW_TABLES = (CURRENT_TABLE, TOTAL_TABLE)                 # made with the charts
DETAIL_TABLES = (QUEUE_TABLE, PRESSURE_TABLE, WAIT_TABLE, EFFICIENCY_TABLE,
                 MONTH_TABLE, USER_MONTH_TABLE)             # made after them
TABLES = (*VIEW_TABLES, *DETAIL_TABLES, OVERVIEW_TABLE)
STEM = "download-stem"           # the view's download file-name stem
# Written by the client-side drawing of each callback's tables.
TABLES_DRAWN = "tables-drawn"
DETAILS_DRAWN = "details-drawn"
OVERVIEW_DRAWN = "overview-drawn"


def spec(table: str) -> str:
    """The store holding a table's spec (app/tables.py), drawn by assets/tables.js."""
    return f"{table}-spec"
