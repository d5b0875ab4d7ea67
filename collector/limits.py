"""QoS limits: read from Slurm (sacctmgr GrpTRES), overridden by the
configuration, and remembered with their dates so a chart's limit line steps
where the limit changed.

`data_dir/limits.json` holds, per QoS, the limits in effect from each time on:
    {"version": 1, "qos": {"avery": [{"since": 1795..., "cpus": 430, "gpus": 39,
                                      "memory_gb": 3359}, ...]}}
A new entry is added only when the effective limits change. Before the first
entry nothing is known, and the first known value is taken to hold back to
the start of the window (the collector cannot see limits it was not there for).

Parsing and the history are pure; sacctmgr, the file I/O and `current_limits`
(a cycle's limits, recorded) are the shell.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.atomic import write_atomic
from collector.binning import Window
from collector.config import Config, QosConfig
from collector.observables import LIMIT_KEYS, LIMITED, Limits
from collector.slurm import Runner, SlurmError, run_slurm, slurm_tool

LIMITS_NAME = "limits.json"
DAY = 86400

log = logging.getLogger("librarian.limits")


class LimitsError(Exception):
    """sacctmgr could not be run or printed something unreadable."""


# --- pure ---------------------------------------------------------------------


def grp_tres_limits(text: str) -> Limits:
    """GrpTRES ('cpu=430,gres/gpu=39,mem=3359G') as Limits; absent keys are None
    (each limited observable reads its own TRES entry: collector/observables.py)."""
    return Limits(**{o.limit_key: o.limit_from_tres(text) for o in LIMITED
                     if o.limit_key and o.limit_from_tres})


def parse_sacctmgr_qos(text: str) -> dict[str, Limits]:
    """`sacctmgr --parsable2 show qos format=Name,GrpTRES` -> QoS name -> Limits.
    The header names the columns; '#' lines are comments."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise LimitsError("sacctmgr printed nothing, not even its header line")
    header = lines[0].split("|")
    if "Name" not in header or "GrpTRES" not in header:
        raise LimitsError(f"sacctmgr's header lacks Name or GrpTRES: {lines[0][:200]!r}")
    name_i, tres_i = header.index("Name"), header.index("GrpTRES")
    out: dict[str, Limits] = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("|")
        if len(fields) != len(header):
            raise LimitsError(f"sacctmgr line {number} has {len(fields)} fields, "
                              f"expected {len(header)}: {line[:200]!r}")
        try:
            out[fields[name_i]] = grp_tres_limits(fields[tres_i])
        except ValueError as err:
            raise LimitsError(f"sacctmgr line {number} (QoS {fields[name_i]!r}): {err}") from None
    return out


def effective_limits(q: QosConfig, from_slurm: Limits | None) -> Limits:
    """Configured numbers first; with auto limits, Slurm's for the rest."""
    base = from_slurm if (q.auto_limits and from_slurm is not None) else Limits()
    return Limits(**{k: q.limits.get(k) if q.limits.get(k) is not None else base.get(k)
                     for k in LIMIT_KEYS})


History = dict[str, list[dict[str, Any]]]


def record_limits(history: History, qos: str, limits: Limits, now: int,
                  keep_from: int) -> History:
    """The history with `limits` in effect from `now` on (only if they changed),
    entries superseded before `keep_from` dropped (pure)."""
    entries = list(history.get(qos, []))
    if entries and now < entries[-1]["since"]:
        return history  # a collection "in the past" (a test, a replay) changes no history
    values = limits.as_dict()
    if not entries or {k: entries[-1].get(k) for k in LIMIT_KEYS} != values:
        entries.append({"since": int(now), **values})
    while len(entries) > 1 and entries[1]["since"] <= keep_from:
        entries.pop(0)
    return {**history, qos: entries}


def limit_steps(entries: Sequence[Mapping[str, Any]], window: Window
                ) -> dict[str, tuple[tuple[int, float | None], ...]]:
    """Per observable, (from, value) steps covering the window: the first at
    the window's start; a change inside the window starts a new step."""
    if not entries:
        return {}
    steps: dict[str, list[tuple[int, float | None]]] = {o.key: [] for o in LIMITED}
    # The entry in effect at the window's start (or the first one known) opens it.
    first = max([i for i, e in enumerate(entries) if int(e["since"]) <= window.start],
                default=0)
    for i, e in enumerate(entries[first:]):
        since = window.start if i == 0 else max(int(e["since"]), window.start)
        if since > window.now:
            break
        for o in LIMITED:
            value = e.get(o.limit_key or "")
            value = None if value is None else float(value)
            run = steps[o.key]
            if run and run[-1][0] == since:
                run[-1] = (since, value)       # a later entry at the same time wins
            elif not run or run[-1][1] != value:
                run.append((since, value))
    return {o: tuple(run) for o, run in steps.items() if run}


# --- I/O ----------------------------------------------------------------------


def sacctmgr_args(slurm_bin: Path | None) -> list[str]:
    return [slurm_tool(slurm_bin, "sacctmgr"), "--parsable2", "show", "qos", "format=Name,GrpTRES"]


def read_slurm_limits(slurm_bin: Path | None, timeout: float, runner: Runner = subprocess.run,
                      environ: Mapping[str, str] | None = None) -> dict[str, Limits]:
    args = sacctmgr_args(slurm_bin)
    try:
        out = run_slurm(args, timeout, runner=runner, environ=environ, needs_output=True)
    except SlurmError as err:
        raise LimitsError(str(err)) from err
    return parse_sacctmgr_qos(out.decode("utf-8", "replace"))


def limits_path(data_dir: Path) -> Path:
    return data_dir / LIMITS_NAME


def read_history(data_dir: Path) -> History:
    """The history; empty when there is none or it cannot be read."""
    try:
        doc = json.loads(limits_path(data_dir).read_text())
        qos = doc["qos"]
        if isinstance(qos, dict) and all(isinstance(v, list) for v in qos.values()):
            return {k: [e for e in v if isinstance(e, dict) and "since" in e]
                    for k, v in qos.items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return {}


def write_history(data_dir: Path, history: History) -> None:
    body = json.dumps({"version": 1, "qos": history}, indent=1, sort_keys=True).encode()
    write_atomic(limits_path(data_dir), lambda fh: fh.write(body))


def last_known(history: History, qos: str) -> Limits | None:
    entries = history.get(qos)
    if not entries:
        return None
    return Limits(**{k: entries[-1].get(k) for k in LIMIT_KEYS})


@dataclass(frozen=True)
class LimitsReport:
    limits: dict[str, Limits]
    steps: dict[str, dict[str, tuple[tuple[int, float | None], ...]]]
    asked_slurm: bool = False   # sacctmgr was asked (some QoS has auto limits)
    warning: str = ""           # why sacctmgr's answer could not be used (last known kept)


def configured_limits(config: Config) -> LimitsReport:
    """The configuration's numbers only (collecting from a saved file: no Slurm to ask)."""
    return LimitsReport(limits={q.name: q.limits for q in config.qos}, steps={})


def _needs_slurm(q: QosConfig) -> bool:
    return q.auto_limits and any(q.limits.get(k) is None for k in LIMIT_KEYS)


def current_limits(config: Config, window: Window, runner: Runner = subprocess.run,
                   environ: Mapping[str, str] | None = None) -> LimitsReport:
    """Limits from sacctmgr (where auto) and the configuration, recorded with
    their dates in limits.json; a failing sacctmgr keeps the last known ones."""
    data_dir = config.site.data_dir
    slurm: dict[str, Limits] | None = None
    warning = ""
    asked = any(_needs_slurm(q) for q in config.qos)
    if asked:
        try:
            slurm = read_slurm_limits(config.site.slurm_bin,
                                      config.collect.sacct_timeout_seconds, runner, environ)
        except LimitsError as err:
            warning = f"QoS limits not read from Slurm, last known kept: {err}"
            log.warning("%s", warning)
    history = read_history(data_dir)
    before = history
    keep_from = window.start - (config.collect.history_days - config.collect.window_days) * DAY
    limits = {}
    for q in config.qos:
        if slurm is not None and _needs_slurm(q) and q.name not in slurm:
            log.warning("sacctmgr lists no QoS %r: its limits come from the configuration only",
                        q.name)
        if slurm is None and _needs_slurm(q):
            limits[q.name] = effective_limits(q, last_known(history, q.name))
        else:
            limits[q.name] = effective_limits(q, (slurm or {}).get(q.name))
        history = record_limits(history, q.name, limits[q.name], window.now, keep_from)
    if history != before:
        write_history(data_dir, history)
    steps = {q.name: limit_steps(history.get(q.name, []), window) for q in config.qos}
    return LimitsReport(limits=limits, steps=steps, asked_slurm=asked, warning=warning)
