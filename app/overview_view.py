"""The overview table: every configured QoS in one sortable, filterable table,
each row linking to its own view (pure). Its rows come from
`data_dir/overview.json` (collector/overview.py), one small file whatever
the number of QoS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.tables import Column
from app.urlstate import UrlState
from collector.observables import LIMITED
from collector.overview import OverviewRow

# More QoS than this: a picker with search instead of the tab bar.
TABS_UP_TO = 6

FLAG_WORDS = {"cpu": "CPU", "memory": "memory", "time": "time limit", "gpu": "GPU"}


def _columns() -> tuple[Column, ...]:
    cols = [Column("qos", "QoS", kind="link"), Column("users", "Users, 7 days", decimals=0,
                                                      short="Users 7 d"),
            Column("running", "Jobs running", decimals=0, short="Running")]
    for o in LIMITED:
        label = o.current_label
        cols += [Column(f"{o.key}_now", f"{label} now", decimals=0 if o.key != "MEMORY" else 1),
                 Column(f"{o.key}_share", f"{label} now, of the limit", unit="%",
                        short="% limit"),
                 Column(f"{o.key}_7d", f"{label}, 7-day mean of the limit", unit="%",
                        short="7 d %")]
    cols += [Column("pending", "Jobs waiting", decimals=0, short="Waiting"),
             Column("queued_NCPUS", "CPUs asked by waiting jobs", decimals=0, short="Queued CPUs"),
             Column("queued_NGPUS", "GPUs asked by waiting jobs", decimals=0, short="Queued GPUs"),
             Column("at_limit_h", "At a limit, 7 days", unit="h", kind="duration"),
             Column("flagged", "Users flagged, 7 days", decimals=0, short="Flagged 7 d"),
             Column("flags", "Efficiency flags", kind="flags")]
    return tuple(cols)


OVERVIEW_COLUMNS = _columns()
OVERVIEW_NOTE = ("Every QoS as the last collection found it: what its running jobs hold now "
                 "and on average over the last 7 days against each limit, what its waiting "
                 "jobs ask for, the hours any resource spent at its limit, and the users the "
                 "efficiency rules flag. Click a column to sort, a QoS to open it.")


def overview_table(rows: Mapping[str, OverviewRow], order: Sequence[str], labels: Mapping[str, str],
                   state: UrlState) -> list[dict[str, object]]:
    """The table's rows in the configuration's order, each linking to its QoS
    with the rest of the view (range, show, grouping) kept. A QoS without a
    row yet (collected before the overview existed) has its name alone."""
    out: list[dict[str, object]] = []
    for key in order:
        link = UrlState(key, state.range, state.start, state.end, state.show, state.group).search()
        r = rows.get(key)
        line: dict[str, object] = {"qos": labels.get(key, key), "qos_href": link}
        if r is not None:
            line |= {"users": r.users, "running": r.running, "pending": r.pending,
                     "at_limit_h": r.at_limit_h, "flagged": r.flagged,
                     "flags": [f"{FLAG_WORDS.get(f, f)} {n}" for f, n in sorted(r.flags.items())],
                     "hints": [f"{n} user(s) flagged for {FLAG_WORDS.get(f, f)} efficiency"
                               for f, n in sorted(r.flags.items())]}
            for res in r.resources:
                line |= {f"{res.key}_now": res.now, f"{res.key}_share": res.share_now,
                         f"{res.key}_7d": res.share_7d}
                if res.key in ("NCPUS", "NGPUS"):
                    line[f"queued_{res.key}"] = res.queued
        out.append(line)
    return out

