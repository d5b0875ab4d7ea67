"""`librarian demo`: the example configuration, three synthetic months, collected.

The demo folder holds a copy of the example configuration (data_dir = data),
the synthetic sacct history it was collected from, and the snapshots and
charts, so every output can be looked at and the collection re-run by hand:
    librarian collect --config DIR/librarian.toml --sacct-file DIR/sacct-history.txt --now ...
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from collector.collect import CollectReport, collect
from collector.config import EXAMPLE_PATH, load_config
from collector.synth import SynthQos, mean_job_cpu_seconds, synth_sacct, synth_squeue

# avery is kept busy near its 430-CPU limit; avery-b (burst) sees less.
DEMO_QOS = (
    SynthQos("avery", share=0.8, gpu_fraction=0.15, cpu_limit=430, gpu_limit=39),
    SynthQos("avery-b", share=0.2, gpu_fraction=0.0, cpu_limit=3870),
)
TARGET_CPUS = 330.0  # mean CPUs asked for over both QoS
DEMO_USERS = 24
DEMO_DAYS = 90


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    config_path: Path
    history_path: Path
    job_lines: int
    report: CollectReport


def run_demo(folder: Path, seed: int = 7, plots: bool = True, now: float | None = None) -> DemoResult:
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "librarian.toml"
    config_path.write_text(EXAMPLE_PATH.read_text())
    config = load_config(config_path)
    now_s = int(time.time() if now is None else now)
    # Three months: the window, and daily history enough for 90d and month by month
    # (a year of synthetic jobs would triple the demo's time for little more to see).
    days = max(config.collect.window_days, min(DEMO_DAYS, config.collect.history_days))
    n_jobs = int(TARGET_CPUS * days * 86400 / mean_job_cpu_seconds())
    history = synth_sacct(now_s, days, n_jobs, n_users=DEMO_USERS, qos=DEMO_QOS,
                          tz=config.site.timezone, seed=seed, steps=0.9, usage=True)
    history_path = folder / "sacct-history.txt"
    history_path.write_bytes(history)
    queue_path = folder / "squeue-now.txt"
    queue_path.write_bytes(synth_squeue(history, config.site.timezone))
    report = collect(config, now_s, sacct_file=history_path, squeue_file=queue_path,
                     plots=plots)
    return DemoResult(folder=folder.resolve(), config_path=config_path, history_path=history_path,
                      job_lines=n_jobs, report=report)
