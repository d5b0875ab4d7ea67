"""The charts' members: the largest in view drawn, the rest as one "N others" (pure).

A stacked chart of a hundred users is a grey band of slivers, and drawing it
is most of a range change's time in the browser (Plotly draws every trace's
path; bench/dashboard_bench.py). So the charts draw the `top` members with the
largest share of the view (a member's score is its largest share of any of
the four charts, so a GPU user with few CPUs is drawn too) and one row for
the rest, summed: the stacked total, the limit line and the hover are
unchanged. Members the visitor hid are left out of both. The tables and the
shared legend still list every member; a legend click on a folded chart asks
the server for a new fold (assets/librarian.js).

The name of the row is "N others": a space never appears in a Slurm user,
account or partition name, so it cannot clash with a member (the anonymised
export's plain "others" is another thing: the users it keeps).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np

from collector.history import History
from collector.observables import CHART_KEYS, KEYS, queued_key
from collector.palette import OTHERS_COLOR
from collector.snapshot import Snapshot


@dataclass(frozen=True)
class Fold:
    """What the charts drew: `top` (0: every member), the members summed into
    the `others` row ("" and () when nothing was folded)."""

    top: int = 0
    others: str = ""
    folded: tuple[str, ...] = ()

    def meta(self) -> dict[str, object]:
        """The charts' layout.meta entry the page's legend reads."""
        return {"top": self.top, "others": self.others, "folded": list(self.folded)}


NO_FOLD = Fold()


def others_name(n: int) -> str:
    return f"{n} others"


def choose(names: tuple[str, ...], scores: np.ndarray, hidden: Collection[str], top: int
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices of the members drawn (the `top` largest scores, in `names`'
    order) and of those folded (the rest with any score); None: no fold, when
    `top` is 0 or folding would not draw fewer rows (at most top + 1 members
    with anything). Hidden members are in neither. Ties go to the earlier name."""
    if top <= 0:
        return None
    shown = np.array([n not in hidden for n in names], dtype=bool)
    candidates = np.flatnonzero(shown & (scores > 0))
    if len(candidates) <= top + 1:
        return None
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return np.sort(order[:top]), np.sort(order[top:])


def _scores(totals: list[np.ndarray]) -> np.ndarray:
    """Each member's largest share of any chart's total (members x charts in)."""
    shares = [t / t.sum() for t in totals if t.sum() > 0]
    if not shares:
        return np.zeros(len(totals[0]) if totals else 0)
    return np.max(np.vstack(shares), axis=0)


def _keys(show: str) -> list[list[str]]:
    """Per chart, the series whose sum ranks the members for the mode shown."""
    out = []
    for obs in CHART_KEYS:
        queue = queued_key(obs)
        if show == "queued":
            out.append([queue] if queue else [obs])
        elif show == "both" and queue:
            out.append([obs, queue])
        else:
            out.append([obs])
    return out


def _fold_rows(matrix: np.ndarray, keep: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """The kept rows, then the sum of the folded ones (the member axis first)."""
    return np.concatenate([matrix[keep], matrix[rest].sum(axis=0, keepdims=True)])


def _fold_of(names: tuple[str, ...], totals: list[np.ndarray], hidden: Collection[str],
             top: int) -> tuple[np.ndarray, np.ndarray, Fold] | None:
    """`choose` on the members' scores, with the Fold it makes; None: no fold."""
    chosen = choose(names, _scores(totals), hidden, top) if names else None
    if chosen is None:
        return None
    keep, rest = chosen
    return keep, rest, Fold(top, others_name(len(rest)), tuple(names[i] for i in rest))


def fold_hourly(snap: Snapshot, first: int, last: int, show: str,
                hidden: Collection[str], top: int) -> tuple[Snapshot, Fold]:
    """The snapshot the charts draw for bins [first, last): its users the top
    ones and "N others" (series and values now folded alike)."""
    totals = [sum(snap.series[k][:, first:last].sum(axis=1) for k in keys)
              for keys in _keys(show)]
    folded = _fold_of(snap.users, totals, hidden, top)
    if folded is None:
        return snap, Fold(top=top)
    keep, rest, fold = folded
    users = (*(snap.users[i] for i in keep), fold.others)
    series = {k: _fold_rows(v, keep, rest) for k, v in snap.series.items()}
    current = {k: _fold_rows(v, keep, rest) for k, v in snap.current.items()}
    return replace(snap, users=users, series=series, current=current, groups={}), fold


def fold_daily(snap: Snapshot, inside: np.ndarray, show: str, hidden: Collection[str],
               top: int) -> tuple[Snapshot, Fold]:
    """The same for a daily view: the history's members over its days `inside`."""
    h = snap.history
    if h is None:
        return snap, Fold(top=top)
    totals = [sum(h.seconds[KEYS.index(k)][:, inside].sum(axis=1) for k in keys)
              for keys in _keys(show)]
    folded = _fold_of(h.users, totals, hidden, top)
    if folded is None:
        return snap, Fold(top=top)
    keep, rest, fold = folded
    seconds = np.concatenate([h.seconds[:, keep], h.seconds[:, rest].sum(axis=1, keepdims=True)],
                             axis=1)
    history = History(h.first, (*(h.users[i] for i in keep), fold.others), seconds,
                      _fold_rows(h.started, keep, rest), h.complete_from)
    return replace(snap, history=history, groups={}), fold


def fold_colors(colors: dict[str, str], fold: Fold) -> dict[str, str]:
    """The members' colours and the others row's grey."""
    return {**colors, fold.others: OTHERS_COLOR} if fold.others else colors
