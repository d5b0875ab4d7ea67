"""The sacct boundary: the exact argument list, the environment, every failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.sacct import (
    FIELDS,
    SacctError,
    build_sacct_args,
    run_sacct,
    sacct_environment,
    sacct_executable,
)
from tests import fake_sacct


class TestArguments:
    def test_exact_argument_list(self) -> None:
        args = build_sacct_args("sacct", ["avery", "avery-b"], 1_764_000_000, 1_764_003_600)
        assert args == [
            "sacct", "--allusers", "--allocations", "--duplicates", "--parsable2", "--noconvert",
            "--starttime=2025-11-24T16:00:00", "--endtime=2025-11-24T17:00:00",
            "--qos=avery,avery-b",
            "--format=JobIDRaw,JobID,User,QOS,State,Submit,Start,End,ElapsedRaw,NNodes,NCPUS,"
            "ReqMem,ReqTRES,AllocTRES",
        ]

    def test_never_truncates(self) -> None:
        args = build_sacct_args("sacct", ["q"], 0, 1)
        assert "-T" not in args
        assert "--truncate" not in args

    def test_needs_a_qos_and_an_ordered_window(self) -> None:
        with pytest.raises(ValueError, match="at least one QoS"):
            build_sacct_args("sacct", [], 0, 1)
        with pytest.raises(ValueError, match="before its start"):
            build_sacct_args("sacct", ["q"], 10, 1)

    def test_executable_in_slurm_bin(self) -> None:
        assert sacct_executable(Path("/opt/slurm/bin")) == "/opt/slurm/bin/sacct"
        assert sacct_executable(None) == "sacct"

    def test_format_lists_exactly_the_fields_the_parser_needs(self) -> None:
        args = build_sacct_args("sacct", ["q"], 0, 1)
        (fmt,) = [a for a in args if a.startswith("--format=")]
        assert fmt.removeprefix("--format=").split(",") == [
            "JobIDRaw", "JobID", "User", "QOS", "State", "Submit", "Start", "End",
            "ElapsedRaw", "NNodes", "NCPUS", "ReqMem", "ReqTRES", "AllocTRES"]
        # Each one is needed: a header without it is refused, naming it.
        from collector.parse import SacctFormatError, parse_sacct

        for field in FIELDS:
            header = "|".join(f for f in FIELDS if f != field)
            with pytest.raises(SacctFormatError, match=rf"lacks the field\(s\) {field} "):
                parse_sacct(f"{header}\n".encode())


class TestEnvironment:
    def test_time_zone_and_format_are_pinned(self) -> None:
        env = sacct_environment({"PATH": "/bin", "TZ": "America/New_York",
                                 "SLURM_TIME_FORMAT": "relative"})
        assert env == {"PATH": "/bin", "TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}


class TestRun:
    def test_output_and_environment(self, tmp_path: Path, samples: Path) -> None:
        script = fake_sacct.install(tmp_path, prints=samples / "sacct_avery.txt")
        out = run_sacct([str(script), "--allusers"], timeout=10,
                        environ={"PATH": os.environ["PATH"], "TZ": "Europe/Paris"})
        assert out.startswith(b"User|Account|QOS")
        assert fake_sacct.recorded_args(tmp_path) == ["--allusers"]
        assert (tmp_path / "sacct.env").read_text().strip() == "TZ=UTC SLURM_TIME_FORMAT=standard"

    def test_non_zero_exit_names_the_command_and_stderr(self, tmp_path: Path) -> None:
        script = fake_sacct.install(tmp_path, exit_code=1,
                                    stderr="sacct: error: Problem talking to the database")
        with pytest.raises(SacctError) as info:
            run_sacct([str(script), "--qos=avery"], timeout=10)
        text = str(info.value)
        assert "exited with status 1" in text
        assert f"command: {script} --qos=avery" in text
        assert "Problem talking to the database" in text

    def test_time_out(self, tmp_path: Path) -> None:
        script = fake_sacct.install(tmp_path, sleep=30)
        with pytest.raises(SacctError, match=r"did not answer within 0.5 s.*sacct_timeout_seconds"):
            run_sacct([str(script)], timeout=0.5)

    def test_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(SacctError, match=r"not found.*site\.slurm_bin"):
            run_sacct([str(tmp_path / "no-sacct")], timeout=5)

    def test_not_executable(self, tmp_path: Path) -> None:
        script = tmp_path / "sacct"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o644)
        with pytest.raises(SacctError, match="cannot execute"):
            run_sacct([str(script)], timeout=5)

    def test_empty_output(self, tmp_path: Path) -> None:
        script = fake_sacct.install(tmp_path)
        with pytest.raises(SacctError, match="printed nothing"):
            run_sacct([str(script)], timeout=5)
