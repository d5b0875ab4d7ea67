"""Alerts: the rules of [alerts], checked every cycle; each one tells when it
starts and when it clears, once (pure, but for `load_state`/`save_state`).

Conditions (each rule off at 0):
  at_limit_hours   a QoS at its limit of a resource, without a break, for
                   longer than this: the window's bins back from now that
                   were at the limit all through, plus the at-limit part of
                   the bin before them (the limit pressure's exact seconds);
  hog_percent/hog_hours
                   one user holding more than hog_percent of a limit now and
                   through the last bins, for longer than hog_hours, while
                   other users' jobs wait for that resource (bin averages);
  idle_gpu_hours   a GPU job whose recorded GPU utilisation is 0% after
                   running this long (running, or ended in the last day):
                   only where the cluster records gres/gpuutil;
  failed_cycles    the collect failing this many cycles in a row;
  stale_cycles     a QoS's snapshot older than this many collect intervals.

State (`data_dir/alerts.json`, written atomically): the alerts in force, when
each started, and when each last sent a message. The rate limit
(rate_limit_minutes) holds back a message that would follow the last one of
the same alert sooner: a start or a clear held back is sent when the limit
has passed if it still stands, and dropped if the condition flipped back
meanwhile (a flapping alert sends nothing more until it settles).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from collector.atomic import write_atomic
from collector.config import AlertsConfig
from collector.jobtable import JobTable
from collector.observables import observable
from collector.snapshot import Snapshot

STATE_NAME = "alerts.json"


@dataclass(frozen=True)
class Condition:
    key: str       # stable: rule|qos|what
    title: str     # one line
    detail: str = ""
    qos: str = ""


def _bin_now(snap: Snapshot) -> tuple[int, float]:
    """The bin holding `now`, and the seconds of it that have passed."""
    cur = min(max((snap.now - snap.window_start) // snap.bin_seconds, 0), snap.n_bins - 1)
    return int(cur), float(snap.now - (snap.window_start + cur * snap.bin_seconds))


def _label(key: str) -> str:
    return observable(key).current_label


def at_limit(snap: Snapshot, hours: float) -> list[Condition]:
    out = []
    cur, elapsed = _bin_now(snap)
    now_at = {a.key: a for a in snap.limit_now}
    for key, p in snap.pressure.items():
        if key not in now_at:
            continue
        seconds = min(float(p.at_limit[cur]), elapsed)
        k = cur - 1
        while k >= 0 and p.at_limit[k] >= snap.bin_seconds - 1:
            seconds += snap.bin_seconds
            k -= 1
        if k >= 0:
            seconds += float(p.at_limit[k])
        if seconds / 3600 > hours:
            a = now_at[key]
            holders = ", ".join(f"{u} {v:g}" for u, v in a.holders[:5])
            detail = f"{a.used:g} of {a.limit:g} {_label(key)} held ({holders})"
            if a.waiting_jobs:
                detail += f"; {a.waiting_jobs} job(s) wait for {_label(key)}"
            out.append(Condition(f"at_limit|{snap.qos}|{key}",
                                 f"{snap.qos} has been at its {_label(key)} limit for "
                                 f"{seconds / 3600:.1f} h", detail, snap.qos))
    return out


def hogs(snap: Snapshot, percent: float, hours: float) -> list[Condition]:
    out = []
    cur, elapsed = _bin_now(snap)
    for key in snap.pressure:
        limit = snap.thresholds.get(key)
        queued_key = f"QUEUED_{key}"
        if not limit or key not in snap.current or queued_key not in snap.current:
            continue
        line = percent / 100 * limit
        held, queued = snap.series[key], snap.series[queued_key]
        waiting_now = snap.current[queued_key]
        for u, name in enumerate(snap.users):
            others_now = float(waiting_now.sum() - waiting_now[u])
            if snap.current[key][u] <= line or others_now <= 0:
                continue
            others = queued.sum(axis=0) - queued[u]
            k = cur - 1
            while k >= 0 and held[u, k] > line and others[k] > 0:
                k -= 1
            seconds = elapsed + (cur - 1 - k) * snap.bin_seconds
            if seconds / 3600 > hours:
                share = 100 * snap.current[key][u] / limit
                out.append(Condition(
                    f"hog|{snap.qos}|{key}|{name}",
                    f"{name} holds {share:.0f}% of {snap.qos}'s {_label(key)} limit "
                    f"while others wait", f"{snap.current[key][u]:g} of {limit:g} "
                    f"{_label(key)} for {seconds / 3600:.1f} h; others wait for "
                    f"{others_now:g} {_label(key)}", snap.qos))
    return out


def idle_gpus(jobs: JobTable, qos: str, now: float, hours: float) -> list[Condition]:
    """GPU jobs of one QoS at 0% recorded utilisation after `hours` of running."""
    if not len(jobs) or qos not in jobs.qos_names:
        return []
    q = jobs.qos_names.index(qos)
    start, end = jobs.start, jobs.end
    ran = np.where(np.isnan(end), now, end) - start
    rows = np.flatnonzero((jobs.qos == q) & (jobs.gpus > 0) & ~np.isnan(start)
                          & (ran > hours * 3600) & ~np.isnan(jobs.gpu_util)
                          & (jobs.gpu_util <= 0) & (np.isnan(end) | (end > now - 86400)))
    out = []
    for i in rows.tolist():
        user = jobs.users[jobs.user[i]]
        running = bool(np.isnan(end[i]))
        out.append(Condition(
            f"idle_gpu|{qos}|{jobs.job_id[i]}",
            f"{user}'s job {jobs.job_id[i]} on {qos} held {jobs.gpus[i]:g} GPU(s) at 0% "
            f"utilisation for {ran[i] / 3600:.1f} h", "still running" if running else "ended",
            qos))
    return out


def failed(status: dict[str, Any], cycles: int) -> list[Condition]:
    c = status.get("steps", {}).get("collect", {})
    n = int(c.get("failed_in_row", 0)) if isinstance(c, dict) else 0
    if n < cycles:
        return []
    return [Condition("failed|collect", f"the collect has failed {n} cycles in a row",
                      str(c.get("error") or ""))]


def stale(snap: Snapshot, now: float, cycles: int, interval_minutes: int) -> list[Condition]:
    age = now - snap.now
    if age <= cycles * interval_minutes * 60:
        return []
    return [Condition(f"stale|{snap.qos}", f"{snap.qos}'s data is {age / 3600:.1f} h old",
                      f"more than {cycles} collect cycles of {interval_minutes} min", snap.qos)]


def conditions(rules: AlertsConfig, snaps: Iterable[Snapshot], status: dict[str, Any],
               now: float, interval_minutes: int, jobs: JobTable | None = None
               ) -> list[Condition]:
    """Every condition in force now, by the rules."""
    out: list[Condition] = []
    for snap in snaps:
        if rules.at_limit_hours:
            out += at_limit(snap, rules.at_limit_hours)
        if rules.hog_percent and rules.hog_hours:
            out += hogs(snap, rules.hog_percent, rules.hog_hours)
        if rules.idle_gpu_hours and jobs is not None:
            out += idle_gpus(jobs, snap.qos, now, rules.idle_gpu_hours)
        if rules.stale_cycles:
            out += stale(snap, now, rules.stale_cycles, interval_minutes)
    if rules.failed_cycles:
        out += failed(status, rules.failed_cycles)
    return out


@dataclass(frozen=True)
class Event:
    kind: str          # "start" | "clear"
    key: str
    title: str
    detail: str
    since: float       # when the alert started
    at: float

    @property
    def id_key(self) -> str:
        """What makes this message itself: the alert, its start, and the kind."""
        return f"alert|{self.key}|{self.since:.0f}|{self.kind}"


def step(state: dict[str, Any], now_in_force: list[Condition], now: float,
         rate_limit_minutes: float) -> tuple[dict[str, Any], list[Event]]:
    """The next state and the messages to send (pure). The state maps each
    alert ever seen recently to {active, since, title, detail, told, told_at}:
    `active` is the condition, `told` what the last message said (in force or
    not), and the two differ while a message is held back by the rate limit."""
    alerts = {k: dict(v) for k, v in state.get("alerts", {}).items() if isinstance(v, dict)}
    seen = {c.key: c for c in now_in_force}
    for key, c in seen.items():
        a = alerts.get(key)
        if a is None or not a.get("active"):
            old = a or {}
            fresh = not old.get("told")   # told: a clear was held back; the alert goes on
            alerts[key] = {**old, "active": True, "title": c.title, "detail": c.detail,
                           "qos": c.qos, "since": now if fresh else old.get("since", now)}
        else:   # the page says it as it stands now; the clear repeats what the start said
            a.update(title=c.title, detail=c.detail)
    for key, a in alerts.items():
        if key not in seen and a.get("active"):
            a.update(active=False, cleared=now)
    events = []
    gap = rate_limit_minutes * 60
    for key, a in list(alerts.items()):
        told, active = bool(a.get("told")), bool(a.get("active"))
        if told == active:
            if not active and now - float(a.get("cleared", now)) > 7 * 86400:
                del alerts[key]   # forgotten a week after it cleared
            continue
        if now - float(a.get("told_at", -np.inf)) < gap:
            continue   # held back: sent later if it still stands
        kind = "start" if active else "clear"
        title = a.get("title", key) if active else a.get("told_title", a.get("title", key))
        events.append(Event(kind, key, title, a.get("detail", ""), float(a.get("since", now)), now))
        a.update(told=active, told_at=now, told_title=title)
    return {"alerts": alerts, "updated": now}, events


def in_force(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The alerts in force, for the page: oldest first."""
    rows = [{"key": k, **v} for k, v in state.get("alerts", {}).items()
            if isinstance(v, dict) and v.get("active")]
    return sorted(rows, key=lambda r: (r.get("since", 0), r["key"]))


def message_text(e: Event, site: str, tz: str) -> tuple[str, str]:
    """(subject, body) of an event's message."""
    when = datetime.fromtimestamp(e.since, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    if e.kind == "start":
        subject = f"[Librarian {site}] {e.title}"
        body = f"{e.title}.\n{e.detail}\n(in force since {when})\n"
    else:
        subject = f"[Librarian {site}] cleared: {e.title}"
        body = f"Cleared: {e.title} (in force since {when}).\n"
    return subject, body


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_NAME


def load_state(data_dir: Path) -> dict[str, Any]:
    try:
        doc = json.loads(state_path(data_dir).read_text())
    except (OSError, ValueError):
        return {"alerts": {}}
    return doc if isinstance(doc, dict) and isinstance(doc.get("alerts"), dict) else {"alerts": {}}


def save_state(data_dir: Path, state: dict[str, Any]) -> None:
    body = json.dumps(state, indent=1, sort_keys=True).encode()
    write_atomic(state_path(data_dir), lambda fh: fh.write(body))


# What an anonymised page says of an alert that names a member.
NAMELESS = {"hog": "A member holds more than the alert's share of a limit while others wait.",
            "idle_gpu": "A GPU job has run at 0% GPU utilisation past the alert's time."}


def page_lines(state: dict[str, Any], qos: str, with_names: bool = True) -> list[str]:
    """The alerts in force that concern one QoS (or the whole collector), as
    the page says them: "Alert: ...". Without names, the ones naming a member
    say only what kind of thing is wrong."""
    out = []
    for a in in_force(state):
        if a.get("qos") not in ("", qos):
            continue
        rule = a["key"].split("|", 1)[0]
        if not with_names and rule in NAMELESS:
            text = NAMELESS[rule]
        else:
            text = str(a.get("title", a["key"])) + "."
        if text not in out:
            out.append(text)
    return [f"Alert: {t}" for t in out]
