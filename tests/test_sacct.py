"""The sacct boundary: the exact argument list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collector.sacct import FIELDS, QUEUE_FIELDS, REQUIRED_FIELDS, build_sacct_args, qos_chunks
from collector.slurm import slurm_tool


class TestArguments:
    def test_exact_argument_list(self) -> None:
        args = build_sacct_args("sacct", ["avery", "avery-b"], 1_764_000_000, 1_764_003_600)
        assert args == [
            "sacct", "--allusers", "--allocations", "--duplicates", "--parsable2", "--noconvert",
            "--starttime=2025-11-24T16:00:00", "--endtime=2025-11-24T17:00:00",
            "--qos=avery,avery-b",
            "--format=JobIDRaw,JobID,User,QOS,State,Submit,Start,End,ElapsedRaw,NNodes,NCPUS,"
            "ReqMem,ReqTRES,AllocTRES,Eligible,ReqCPUS,Reason,TimelimitRaw,Account,Partition",
        ]

    def test_many_qos_are_asked_in_runs_in_order(self) -> None:
        names = [f"grp{i:03d}" for i in range(450)]
        runs = qos_chunks(names, 200)
        assert [len(r) for r in runs] == [200, 200, 50]
        assert [n for r in runs for n in r] == names
        assert qos_chunks(["a", "b"], 200) == [["a", "b"]]
        with pytest.raises(ValueError, match="at least 1"):
            qos_chunks(names, 0)

    def test_never_truncates(self) -> None:
        args = build_sacct_args("sacct", ["q"], 0, 1)
        assert "-T" not in args
        assert "--truncate" not in args

    def test_needs_a_qos_and_an_ordered_window(self) -> None:
        with pytest.raises(ValueError, match="at least one QoS"):
            build_sacct_args("sacct", [], 0, 1)
        with pytest.raises(ValueError, match="before its start"):
            build_sacct_args("sacct", ["q"], 10, 1)

    def test_the_queue_fields_may_be_missing_from_a_saved_file(self) -> None:
        from collector.parse import parse_sacct

        header = "|".join(REQUIRED_FIELDS)
        row = ("7|7|ann|q|PENDING|2026-11-25T10:00:00|Unknown|Unknown|0|1|4|8G|"
               "cpu=4,mem=8G,node=1|")
        jobs = parse_sacct(f"{header}\n{row}\n".encode()).jobs
        assert set(QUEUE_FIELDS).isdisjoint(REQUIRED_FIELDS)
        assert len(jobs) == 1
        assert jobs.req_cpus[0] == 4
        assert jobs.tasks[0] == 1
        assert np.isnan(jobs.eligible[0])
        assert np.isnan(jobs.timelimit[0])
        assert jobs.reasons[jobs.reason[0]] == ""

    def test_executable_in_slurm_bin(self) -> None:
        assert slurm_tool(Path("/opt/slurm/bin"), "sacct") == "/opt/slurm/bin/sacct"
        assert slurm_tool(None, "sacct") == "sacct"

    def test_format_lists_exactly_the_fields_the_parser_needs(self) -> None:
        args = build_sacct_args("sacct", ["q"], 0, 1)
        (fmt,) = [a for a in args if a.startswith("--format=")]
        assert fmt.removeprefix("--format=").split(",") == [
            "JobIDRaw", "JobID", "User", "QOS", "State", "Submit", "Start", "End",
            "ElapsedRaw", "NNodes", "NCPUS", "ReqMem", "ReqTRES", "AllocTRES",
            "Eligible", "ReqCPUS", "Reason", "TimelimitRaw", "Account", "Partition"]
        # Each allocation field is needed: a header without it is refused, naming it.
        from collector.parse import SacctFormatError, parse_sacct

        for field in REQUIRED_FIELDS:
            header = "|".join(f for f in FIELDS if f != field)
            with pytest.raises(SacctFormatError, match=rf"lacks the field\(s\) {field} "):
                parse_sacct(f"{header}\n".encode())
