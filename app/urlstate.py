"""The view in the URL: ?qos=avery&range=7d (or range=custom&from=...&to=...),
&show=queued or &show=both when the charts draw the queue, and &group=account
or &group=partition when the charts and tables are grouped so. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from app.figures import CUSTOM, DEFAULT_GROUP, DEFAULT_RANGE, DEFAULT_SHOW, RANGES, SHOW_MODES
from collector.jobtable import GROUPINGS


@dataclass(frozen=True)
class UrlState:
    qos: str
    range: str = DEFAULT_RANGE
    start: str | None = None  # custom range, site wall-clock 'YYYY-MM-DDTHH:MM'
    end: str | None = None
    show: str = DEFAULT_SHOW
    group: str = DEFAULT_GROUP

    def search(self) -> str:
        params = {"qos": self.qos, "range": self.range}
        if self.range == CUSTOM:
            params |= {"from": self.start or "", "to": self.end or ""}
        if self.show != DEFAULT_SHOW:
            params["show"] = self.show
        if self.group != DEFAULT_GROUP:
            params["group"] = self.group
        return "?" + urlencode(params)


def parse_search(search: str | None, qos_names: tuple[str, ...]) -> UrlState:
    """Whatever the URL holds, a valid state: unknown values fall back to defaults."""
    params = parse_qs((search or "").lstrip("?"))

    def one(key: str) -> str | None:
        values = params.get(key)
        return values[0] if values else None

    qos = one("qos")
    qos = qos if qos in qos_names else qos_names[0]
    rng = one("range")
    show = one("show")
    show = show if show in SHOW_MODES else DEFAULT_SHOW
    group = one("group")
    group = group if group in GROUPINGS else DEFAULT_GROUP
    if rng == CUSTOM and one("from") and one("to"):
        return UrlState(qos, CUSTOM, one("from"), one("to"), show, group)
    return UrlState(qos, rng if rng in RANGES else DEFAULT_RANGE, show=show, group=group)


def rules(qos_names: tuple[str, ...], control_ids: dict[str, str]) -> dict[str, object]:
    """What the page's own URL sync (assets/librarian.js syncUrl) needs to read
    and write the URL exactly as `parse_search` and `UrlState.search` do."""
    return {"qos": list(qos_names), "ranges": list(RANGES), "custom": CUSTOM,
            "default_range": DEFAULT_RANGE, "shows": list(SHOW_MODES),
            "default_show": DEFAULT_SHOW, "groups": list(GROUPINGS),
            "default_group": DEFAULT_GROUP, "ids": control_ids}
