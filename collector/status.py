"""The status file: each step's last outcome, so pages can say why data is stale.

`data_dir/status.json` holds, per step (collect, limits, queue, export, deploy), the
last run's start, duration, outcome and error, and the last success. `librarian
run` writes it after every step, and every live collect records its sacct work
and whether the QoS limits could be read; the dashboard and the static site
read it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from collector.atomic import write_atomic

STATUS_NAME = "status.json"
STEPS = ("collect", "limits", "queue", "export", "deploy", "alerts", "notify")
# How a page names a step that failed ("The last ... failed at ..."); "limits" is
# recorded by collect when sacctmgr's answer cannot be used (last known kept).
STEP_TITLES = {"limits": "read of the QoS limits from sacctmgr (the last known are drawn)",
               "queue": "read of the queue from squeue (the queue now is unknown)",
               "notify": "sending of the digest and alerts (they wait in the outbox)"}


def status_path(data_dir: Path) -> Path:
    return data_dir / STATUS_NAME


def read_status(data_dir: Path) -> dict[str, Any]:
    """The status document; empty when there is none or it cannot be read."""
    try:
        doc = json.loads(status_path(data_dir).read_text())
    except (OSError, ValueError):
        return {"steps": {}}
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), dict):
        return {"steps": {}}
    return doc


def record_step(status: dict[str, Any], step: str, ok: bool, started: float, duration: float,
                error: str | None = None, detail: str = "") -> dict[str, Any]:
    """The status with one step's outcome recorded (pure)."""
    steps = dict(status.get("steps", {}))
    previous = steps.get(step, {})
    steps[step] = {
        "ok": ok, "started": round(started, 3), "duration_seconds": round(duration, 3),
        "error": None if ok else (error or "failed"), "detail": detail,
        "last_success": round(started, 3) if ok else previous.get("last_success"),
        # Failures since the last success (the alerts' failed_cycles rule).
        "failed_in_row": 0 if ok else int(previous.get("failed_in_row", 0)) + 1,
    }
    return {**status, "steps": steps, "updated": round(time.time(), 3)}


# Cycles kept in the status file: a week of 10-minute cycles.
SYNC_HISTORY = 1008


def record_sync(status: dict[str, Any], now: int, sync: Any) -> dict[str, Any]:
    """The status with one collection cycle's sacct work appended (pure).
    `status["sacct"]["cycles"]` is the recent history; `rows_per_day` sums it."""
    entry = {"at": int(now), "mode": "full" if sync.full else "incremental",
             "reason": sync.reason, "queries": sync.queries, "rows": sync.rows,
             "sacct_seconds": sync.sacct_seconds, "records": sync.records,
             "requeried_open": sync.requeried_open, "usage_rows": sync.usage_rows,
             "cold_rewritten": sync.cold_rewritten}
    if sync.set_aside:
        entry["set_aside"] = sync.set_aside
    old = status.get("sacct", {}) if isinstance(status.get("sacct"), dict) else {}
    cycles = [c for c in old.get("cycles", []) if isinstance(c, dict)][-(SYNC_HISTORY - 1):]
    cycles.append(entry)
    day = [c for c in cycles if c.get("at", 0) > now - 86400]
    summary = {"last": entry, "cycles": cycles,
               "last_24h": {"cycles": len(day), "rows": sum(c.get("rows", 0) for c in day),
                            "usage_rows": sum(c.get("usage_rows", 0) for c in day),
                            "queries": sum(c.get("queries", 0) for c in day),
                            "sacct_seconds": round(sum(c.get("sacct_seconds", 0) for c in day), 3)}}
    return {**status, "sacct": summary, "updated": round(time.time(), 3)}


def write_status(data_dir: Path, status: dict[str, Any]) -> None:
    body = json.dumps(status, indent=1, sort_keys=True).encode()
    write_atomic(status_path(data_dir), lambda fh: fh.write(body))


def failures(status: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(step's title, error, when) for each step whose last run failed, in pipeline order."""
    out = []
    for step in STEPS:
        s = status.get("steps", {}).get(step)
        if isinstance(s, dict) and s.get("ok") is False:
            out.append((STEP_TITLES.get(step, step), str(s.get("error") or "failed"),
                        float(s.get("started") or 0)))
    return out
