"""Slurm value formats: memory sizes, ReqMem, TRES strings, GPU counting."""

from __future__ import annotations

import pytest

from collector.slurm_formats import (
    PER_CPU,
    PER_JOB,
    PER_NODE,
    parse_req_mem,
    parse_size_mib,
    parse_tres,
    tres_gpus,
    tres_mem_mib,
)


class TestSizes:
    @pytest.mark.parametrize(("text", "mib"), [
        ("8192M", 8192), ("500", 500), ("16G", 16384), ("1T", 1048576),
        ("2048K", 2), ("1.5G", 1536), ("0", 0), ("1P", 1024**3),
    ])
    def test_binary_units_in_mib(self, text: str, mib: float) -> None:
        assert parse_size_mib(text) == mib

    @pytest.mark.parametrize("text", ["", "G", "-5M", "12Q", "1e3M", "eight"])
    def test_bad_sizes_quote_the_value(self, text: str) -> None:
        with pytest.raises(ValueError, match=repr(text).replace("\\", "\\\\")):
            parse_size_mib(text)


class TestReqMem:
    @pytest.mark.parametrize(("text", "expected"), [
        ("4000Mc", (4000, PER_CPU)), ("16Gn", (16384, PER_NODE)), ("8192M", (8192, PER_JOB)),
        ("0c", (0, PER_CPU)), ("0n", (0, PER_NODE)), ("", (0, PER_JOB)), ("2G", (2048, PER_JOB)),
    ])
    def test_old_and_new_forms(self, text: str, expected: tuple[float, str]) -> None:
        assert parse_req_mem(text) == expected

    def test_bad_reqmem(self) -> None:
        with pytest.raises(ValueError, match="'4000Mx'"):
            parse_req_mem("4000Mx")


class TestTres:
    def test_parse(self) -> None:
        assert parse_tres("billing=4,cpu=4,gres/gpu=2,mem=8192M,node=1") == {
            "billing": "4", "cpu": "4", "gres/gpu": "2", "mem": "8192M", "node": "1"}
        assert parse_tres("") == {}

    def test_bad_item(self) -> None:
        with pytest.raises(ValueError, match="bad item 'gpu'"):
            parse_tres("cpu=4,gpu")

    def test_untyped_gpu_count_is_the_total(self) -> None:
        assert tres_gpus("cpu=4,gres/gpu=2,mem=8G") == 2

    def test_typed_and_untyped_are_never_added(self) -> None:
        # Slurm lists the same GPUs twice: untyped total and per type.
        assert tres_gpus("cpu=4,gres/gpu=2,gres/gpu:a100=2,mem=8G") == 2

    def test_typed_only_are_summed(self) -> None:
        assert tres_gpus("cpu=4,gres/gpu:a100=2,gres/gpu:l4=1") == 3

    def test_other_gres_are_not_gpus(self) -> None:
        assert tres_gpus("cpu=4,gres/gpumem=40G,gres/shard=2") is None

    def test_no_gpus(self) -> None:
        assert tres_gpus("billing=1,cpu=1,mem=500M,node=1") is None

    def test_non_numeric_gpu_count(self) -> None:
        with pytest.raises(ValueError, match="gres/gpu is not a number"):
            tres_gpus("gres/gpu=two")

    def test_memory(self) -> None:
        assert tres_mem_mib("cpu=1,mem=500M") == 500
        assert tres_mem_mib("cpu=1,mem=2G") == 2048
        assert tres_mem_mib("cpu=1") is None
        with pytest.raises(ValueError, match="mem is not a memory size"):
            tres_mem_mib("mem=lots")
