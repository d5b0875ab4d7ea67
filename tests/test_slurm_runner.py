"""The one runner of Slurm commands: environment, output, and every failure as SlurmError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.slurm import SlurmError, run_slurm, slurm_environment, slurm_tool
from tests import fake_sacct


class TestTools:
    def test_every_command_is_found_in_slurm_bin_or_on_path(self) -> None:
        for name in ("sacct", "sacctmgr", "squeue", "scontrol", "scancel"):
            assert slurm_tool(Path("/opt/slurm/bin"), name) == f"/opt/slurm/bin/{name}"
            assert slurm_tool(None, name) == name

    def test_an_unknown_command_is_refused(self) -> None:
        with pytest.raises(ValueError, match="'srun'"):
            slurm_tool(None, "srun")


class TestEnvironment:
    def test_time_zone_and_format_are_pinned(self) -> None:
        env = slurm_environment({"PATH": "/bin", "TZ": "America/New_York",
                                 "SLURM_TIME_FORMAT": "relative"})
        assert env == {"PATH": "/bin", "TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}


class TestRun:
    def test_output_and_environment(self, tmp_path: Path, samples: Path) -> None:
        script = fake_sacct.install(tmp_path, prints=samples / "sacct_avery.txt")
        out = run_slurm([str(script), "--allusers"], timeout=10,
                        environ={"PATH": os.environ["PATH"], "TZ": "Europe/Paris"})
        assert out.startswith(b"User|Account|QOS")
        assert fake_sacct.recorded_args(tmp_path) == ["--allusers"]
        assert (tmp_path / "sacct.env").read_text().strip() == "TZ=UTC SLURM_TIME_FORMAT=standard"

    def test_non_zero_exit_names_the_command_and_stderr(self, tmp_path: Path) -> None:
        script = fake_sacct.install(tmp_path, exit_code=1,
                                    stderr="sacct: error: Problem talking to the database")
        with pytest.raises(SlurmError) as info:
            run_slurm([str(script), "--qos=avery"], timeout=10)
        text = str(info.value)
        assert "exited with status 1" in text
        assert f"command: {script} --qos=avery" in text
        assert "Problem talking to the database" in text
        assert info.value.stderr.strip() == "sacct: error: Problem talking to the database"
        assert info.value.command == [str(script), "--qos=avery"]

    def test_time_out(self, tmp_path: Path) -> None:
        script = fake_sacct.install(tmp_path, sleep=30)
        with pytest.raises(SlurmError, match=r"did not answer within 0.5 s.*sacct_timeout_seconds") as info:
            run_slurm([str(script)], timeout=0.5)
        assert (info.value.tool, info.value.timeout) == ("sacct", 0.5)

    def test_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(SlurmError, match=r"not found.*site\.slurm_bin"):
            run_slurm([str(tmp_path / "no-sacct")], timeout=5)

    def test_not_executable(self, tmp_path: Path) -> None:
        script = tmp_path / "sacct"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o644)
        with pytest.raises(SlurmError, match="cannot execute"):
            run_slurm([str(script)], timeout=5)

    def test_empty_output(self, tmp_path: Path) -> None:
        script = fake_sacct.install(tmp_path)
        with pytest.raises(SlurmError, match="printed nothing"):
            run_slurm([str(script)], timeout=5, needs_output=True)
        assert run_slurm([str(script)], timeout=5) == b""  # squeue may print nothing
