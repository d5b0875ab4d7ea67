"""Static PNG and PDF (and SVG) charts per observable and QoS, as the seed drew them.

Stacked areas per user (steps: a bin's value holds for its whole length),
the QoS limit as a labelled dashed line, times in the site's zone, and the
legend outside the axes so it never covers the data, in as many columns as
the number of users needs.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node; set before pyplot loads

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from collector.atomic import write_atomic
from collector.observables import CHART_KEYS, observable
from collector.palette import assign_colors
from collector.snapshot import Snapshot, read_snapshot

FORMATS = ("png", "pdf")   # write_plots' own default (the config's is PNG alone)
LEGEND_ROWS = 22


def _writer(body: bytes) -> Callable[[IO[bytes]], object]:
    return lambda fh: fh.write(body)


def chart(snap: Snapshot, obs: str, colors: Mapping[str, str] | None = None) -> plt.Figure:
    tz = ZoneInfo(snap.timezone)
    starts = snap.bin_starts()
    edges = np.append(starts, snap.now)
    times = [datetime.fromtimestamp(int(t), tz) for t in edges]
    n_users = len(snap.users)
    ncol = max(1, math.ceil(n_users / LEGEND_ROWS))
    fig, ax = plt.subplots(figsize=(10 + 1.7 * ncol, 5.2), layout="constrained")
    if n_users:
        ys = np.column_stack([snap.series[obs], snap.series[obs][:, -1:]])
        colors = colors or assign_colors(snap.users)
        # matplotlib converts datetimes itself (its stubs accept only numbers).
        ax.stackplot(times, ys, labels=snap.users, step="post",  # type: ignore[arg-type]
                     colors=[colors[u] for u in snap.users], linewidth=0)
    else:
        ax.text(0.5, 0.5, "No jobs in this window", transform=ax.transAxes,
                ha="center", va="center", fontsize=14, color="0.4")
    limit = snap.thresholds.get(obs)
    steps = snap.limit_steps(obs)
    if any(v for _, v in steps):
        # The limit in effect over time: a step wherever it changed.
        xs = [datetime.fromtimestamp(int(t), tz) for t, _ in steps] + [times[-1]]
        ys_limit = [v if v else np.nan for _, v in steps]
        ax.step(xs, [*ys_limit, ys_limit[-1]], where="post",  # type: ignore[arg-type]
                color="#c0392b", linestyle="--",
                linewidth=1.4, label=f"QoS limit ({limit:g})" if limit else "QoS limit")
    locator = mdates.AutoDateLocator(tz=tz)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    ax.set_xlim(times[0], times[-1])  # type: ignore[arg-type]
    ax.set_ylim(bottom=0)
    ax.set_ylabel(observable(obs).title)
    where = f" ({snap.cluster})" if snap.cluster else ""
    ax.set_title(f"{snap.site} · QoS {snap.qos}{where} · {observable(obs).title} "
                 f"(updated {times[-1]:%Y-%m-%d %H:%M %Z})")
    ax.grid(alpha=0.3)
    if n_users or any(v for _, v in steps):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=ncol, fontsize=8,
                  frameon=False, borderaxespad=0)
    return fig


def plot_name(obs: str, qos: str, file_cluster: str, fmt: str) -> str:
    return f"{obs}_{file_cluster}_{qos}.{fmt}" if file_cluster else f"{obs}_{qos}.{fmt}"


def write_plots(snap: Snapshot, data_dir: Path, colors: Mapping[str, str] | None = None,
                file_cluster: str = "", formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write every observable's chart in each format; return the paths. `colors`
    (from `assign_colors` over the site's users) keeps colours equal across QoS."""
    written: list[Path] = []
    for obs in CHART_KEYS:
        fig = chart(snap, obs, colors)
        try:
            for fmt in formats:
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, dpi=110)
                path = data_dir / plot_name(obs, snap.qos, file_cluster, fmt)
                write_atomic(path, _writer(buf.getvalue()))
                written.append(path)
        finally:
            plt.close(fig)
    return written


@dataclass(frozen=True)
class PlotJob:
    """One QoS's charts to draw: from its snapshot file, in the site's colours."""

    snapshot: Path
    file_cluster: str
    colors: Mapping[str, str]


def _draw(job: PlotJob, formats: Sequence[str]) -> list[Path]:
    snap = read_snapshot(job.snapshot)
    return write_plots(snap, job.snapshot.parent, job.colors, job.file_cluster, formats)


def draw_many(jobs: Sequence[PlotJob], formats: Sequence[str], processes: int = 1,
              budget_seconds: float | None = None,
              clock: Callable[[], float] = time.monotonic) -> dict[Path, list[Path]]:
    """Draw each job's charts, in order, on `processes` processes (forked: they
    start with matplotlib loaded), starting no new job once `budget_seconds`
    have passed; return the charts of the jobs drawn, by snapshot. The jobs
    not started are left to the caller (the next cycle draws them first)."""
    started = clock()
    out: dict[Path, list[Path]] = {}
    within = lambda: budget_seconds is None or clock() - started < budget_seconds  # noqa: E731
    if processes <= 1 or len(jobs) <= 1:
        for job in jobs:
            if not within():
                break
            out[job.snapshot] = _draw(job, formats)
        return out
    waiting = iter(jobs)
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork")) as pool:
        running: dict[Future[list[Path]], PlotJob] = {}

        def more() -> None:
            while len(running) < processes and within():
                job = next(waiting, None)
                if job is None:
                    return
                running[pool.submit(_draw, job, tuple(formats))] = job

        more()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                out[running.pop(f).snapshot] = f.result()
            more()
    return out
