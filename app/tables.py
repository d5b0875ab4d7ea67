"""Every table of the page as data: columns with their units and decimals, the
rows unrounded, the total row apart (pure).

The Dash page and the static export send the same table specs; one script
(assets/tables.js) draws them as HTML tables on both pages, sorts them with
the total row kept last, formats numbers for reading (thousands separators,
the column's decimals, right-aligned) and downloads them as CSV or JSON
with the unrounded numbers and the units in the headers.

Column kinds: "text"; "number" (a cell may hold words instead, e.g. "not
recorded"); "duration" (hours, drawn as "3 h 5 min"); "flags" (badge words,
with the row's "hints" as their tooltips); "link" (text that links to the
row's `<id>_href`, a page address). A spec with `filter` (its placeholder)
has a box above it that shows only the rows whose first column holds what
is typed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from collector.observables import HELD

KINDS = ("text", "number", "duration", "flags", "link")
# Counts read best without decimals where what is held now is whole.
_WHOLE_NOW = frozenset({"NCPUS", "NGPUS", "NJOBS"})


@dataclass(frozen=True)
class Column:
    id: str
    header: str
    unit: str = ""        # in the CSV/JSON header always; on the page unless a duration
    kind: str = "number"
    decimals: int = 1
    short: str = ""       # the page's header where the full one is too wide (files keep it)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.id!r}: unknown kind {self.kind!r}")

    def spec(self) -> dict[str, object]:
        return {"id": self.id, "header": self.header, "unit": self.unit, "kind": self.kind,
                "decimals": self.decimals, **({"short": self.short} if self.short else {})}


def text_column(cid: str, header: str) -> Column:
    return Column(cid, header, kind="text")


def usage_columns(which: str) -> tuple[Column, ...]:
    """The current-usage ("current") or total-usage ("total") columns: one per
    held observable, headed by its label, and the share of the QoS limit
    where one can exist."""
    cols = [text_column("user", "User")]
    for o in HELD:
        decimals = 0 if which == "current" and o.key in _WHOLE_NOW else 1
        cols.append(Column(o.key, getattr(o, f"{which}_label"), decimals=decimals))
        if o.limit_key:
            cols.append(Column(f"{o.key}_share", f"{o.current_label} of limit", unit="%",
                               decimals=1, short="% limit"))
    return tuple(cols)


def grouped_columns(columns: Sequence[Column], by: str) -> tuple[Column, ...]:
    """The columns with the first ("user") one headed by the grouping shown
    (collector/jobtable.py GROUPINGS): User, Account or Partition."""
    return tuple(replace(c, header=by.capitalize()) if c.id == "user" else c for c in columns)


CURRENT_COLUMNS = usage_columns("current")
TOTAL_COLUMNS = usage_columns("total")


def table_spec(table_id: str, columns: Sequence[Column], rows: Sequence[dict[str, object]],
               stem: str, filter_hint: str = "") -> dict[str, object]:
    """What the page's script draws: the columns, the body rows, the total row
    (a row with `is_total`) apart so that sorting never moves it, and the
    download file names' stem; with `filter_hint`, a filter box (its placeholder)."""
    body = [r for r in rows if not r.get("is_total")]
    totals = [r for r in rows if r.get("is_total")]
    return {"id": table_id, "columns": [c.spec() for c in columns], "rows": body,
            "total": totals[0] if totals else None, "stem": stem,
            **({"filter": filter_hint} if filter_hint else {})}


def slug(text: str) -> str:
    """Lowercase words joined by '-', safe in any file name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def download_stem(site: str, qos: str, range_label: str, grouping: str = "user") -> str:
    """'hipergator_avery_7d_by-user': site, QoS, range and grouping, for the
    file names of the view's downloads (the page adds the table's or chart's name)."""
    return "_".join([slug(site), slug(qos), slug(range_label), f"by-{slug(grouping)}"])


__all__ = [
    "CURRENT_COLUMNS",
    "KINDS",
    "TOTAL_COLUMNS",
    "Column",
    "download_stem",
    "grouped_columns",
    "slug",
    "table_spec",
    "text_column",
    "usage_columns",
]
