"""The collection cycle: sacct (or a saved file) -> parse -> bin -> snapshots and plots.

This is the I/O shell around the pure modules. Nothing is written until the
input has been read and parsed in full, so a failed sacct, a time-out or
unreadable output leaves every previous snapshot exactly as it was.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collector import __version__
from collector.binning import Usage, Window, bin_usage, make_window
from collector.config import Config, QosConfig
from collector.lock import DataLock
from collector.palette import assign_colors
from collector.parse import ParseResult, SacctFormatError, parse_sacct
from collector.sacct import (
    SACCT_TIME_ZONE,
    Runner,
    SacctError,
    build_sacct_args,
    run_sacct,
    sacct_executable,
)
from collector.snapshot import Snapshot, snapshot_path, thresholds_for, write_snapshot

log = logging.getLogger("librarian.collect")


class CollectError(Exception):
    """The input could not be had or read; nothing was written."""


@dataclass(frozen=True)
class QosOutcome:
    qos: str
    snapshot: Path
    users: int
    jobs_counted: int
    plots: tuple[Path, ...] = ()


@dataclass(frozen=True)
class CollectReport:
    window: Window
    parse: ParseResult
    outcomes: tuple[QosOutcome, ...] = field(default_factory=tuple)


def _read_input(config: Config, qos: Sequence[QosConfig], window: Window,
                sacct_file: Path | None, runner: Runner,
                environ: Mapping[str, str] | None) -> tuple[ParseResult, str]:
    if sacct_file is not None:
        try:
            data = sacct_file.read_bytes()
        except OSError as err:
            raise CollectError(f"cannot read {sacct_file}: {err.strerror}") from err
        try:
            return parse_sacct(data, config.site.timezone), f"file:{sacct_file}"
        except SacctFormatError as err:
            raise CollectError(f"{sacct_file}: {err}") from err
    args = build_sacct_args(sacct_executable(config.site.slurm_bin), [q.name for q in qos],
                            window.start, window.now)
    log.debug("running %s", " ".join(args))
    try:
        data = run_sacct(args, config.collect.sacct_timeout_seconds, runner=runner,
                         environ=environ)
    except SacctError as err:
        raise CollectError(str(err)) from err
    try:
        return parse_sacct(data, SACCT_TIME_ZONE), "sacct"
    except SacctFormatError as err:
        raise CollectError(f"unreadable sacct output: {err}; command: {' '.join(args)}") from err


def collect(config: Config, now: float, qos_names: Sequence[str] | None = None,
            sacct_file: Path | None = None, plots: bool = True,
            runner: Runner = subprocess.run,
            environ: Mapping[str, str] | None = None) -> CollectReport:
    """Collect every requested QoS at time `now` (epoch seconds) and write its files."""
    qos = config.qos_named(list(qos_names) if qos_names else None)
    window = make_window(now, config.collect.bin_seconds, config.collect.n_bins)
    data_dir = config.site.data_dir
    with DataLock(data_dir):
        parsed, source = _read_input(config, qos, window, sacct_file, runner, environ)
        if parsed.bad_lines:
            log.warning("%s: %s", source.removeprefix("file:"), parsed.bad_summary())
        usages = {q.name: bin_usage(parsed.jobs.for_qos(q.name), window) for q in qos}
        # One colour per user across this run's QoS, so the charts of all QoS agree.
        colors = assign_colors(u for usage in usages.values() for u in usage.users)
        outcomes = [_write_qos(config, q, usages[q.name], parsed, source, plots, colors)
                    for q in qos]
    return CollectReport(window=window, parse=parsed, outcomes=tuple(outcomes))


def _write_qos(config: Config, q: QosConfig, usage: Usage, parsed: ParseResult,
               source: str, plots: bool, colors: dict[str, str]) -> QosOutcome:
    window = usage.window
    snap = Snapshot(
        qos=q.name, site=config.site.name, timezone=config.site.timezone,
        now=window.now, bin_seconds=window.bin_seconds, window_start=window.start,
        n_bins=window.n_bins, users=usage.users, series=usage.series, current=usage.current,
        thresholds=thresholds_for(q.limits.cpus, q.limits.gpus, q.limits.memory_gb),
        jobs_counted=usage.jobs_counted, skipped_lines=parsed.bad_lines,
        skipped_line_numbers=parsed.bad_line_numbers, source=source,
        generator=f"librarian {__version__}",
    )
    path = snapshot_path(config.site.data_dir, q.name)
    write_snapshot(path, snap)
    written: tuple[Path, ...] = ()
    if plots:
        from collector.plots import write_plots  # matplotlib is slow to import

        written = tuple(write_plots(snap, config.site.data_dir, colors))
    log.info("%s: %d users, %d jobs counted -> %s", q.name, len(usage.users),
             usage.jobs_counted, path)
    return QosOutcome(qos=q.name, snapshot=path, users=len(usage.users),
                      jobs_counted=usage.jobs_counted, plots=written)

