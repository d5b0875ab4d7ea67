"""Shared fixtures: sample paths, a config factory, and the CLI runner."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.config import Config, load_config
from tests.slurm_lab.lab import Lab, LabMissing, find_lab

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "slurm-22.05"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


def config_text(timezone: str = "UTC", bin_seconds: int = 3600, window_days: int = 1,
                extra_qos: str = "") -> str:
    return textwrap.dedent(f"""\
        [site]
        name = "Test cluster"
        timezone = "{timezone}"
        data_dir = "data"

        [collect]
        bin_seconds = {bin_seconds}
        window_days = {window_days}
        history_days = 0
        sacct_timeout_seconds = 20

        [[qos]]
        name = "avery"
        limits = {{ cpus = 430, gpus = 39, memory_gb = 3359 }}

        [[qos]]
        name = "avery-b"
        limits = {{ cpus = 16, gpus = 4, memory_gb = 64 }}
        """) + extra_qos


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a librarian.toml in tmp_path and load it."""

    def make(**kwargs: object) -> Config:
        path = tmp_path / "librarian.toml"
        path.write_text(config_text(**kwargs))  # type: ignore[arg-type]
        return load_config(path)

    return make


@pytest.fixture(scope="session")
def lab() -> Lab:
    """The running Slurm lab. Under CI a missing lab fails; elsewhere it skips
    with the command that starts it."""
    try:
        return find_lab()
    except LabMissing as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the Slurm lab: {err}")
        pytest.skip(str(err))
