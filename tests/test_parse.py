"""sacct text -> job table, on real Slurm 22.05 captures and on edge cases."""

from __future__ import annotations

import mmap
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.arrow_buffers import from_bools, to_floats
from collector.collect import _mapped
from collector.parse import SacctFormatError, parse_sacct
from collector.sacct import FIELDS

HEADER = "|".join(FIELDS)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def line(jobid: str = "1", user: str = "alice", qos: str = "avery", state: str = "COMPLETED",
         submit: str = "2026-11-25T10:00:00", start: str = "2026-11-25T10:00:00",
         end: str = "2026-11-25T11:00:00", elapsed: str = "3600", nnodes: str = "1",
         ncpus: str = "4", reqmem: str = "8G", reqtres: str = "cpu=4,mem=8G,node=1",
         alloctres: str = "cpu=4,mem=8G,node=1", jobid_raw: str | None = None,
         eligible: str | None = None, reqcpus: str | None = None, reason: str = "None",
         timelimit: str = "120", account: str = "avery", partition: str = "hpg-default") -> str:
    values = {"JobIDRaw": jobid_raw or jobid, "JobID": jobid, "User": user, "QOS": qos,
              "State": state, "Submit": submit, "Start": start, "End": end,
              "ElapsedRaw": elapsed, "NNodes": nnodes, "NCPUS": ncpus, "ReqMem": reqmem,
              "ReqTRES": reqtres, "AllocTRES": alloctres,
              "Eligible": submit if eligible is None else eligible,
              "ReqCPUS": ncpus if reqcpus is None else reqcpus, "Reason": reason,
              "TimelimitRaw": timelimit, "Account": account, "Partition": partition}
    return "|".join(values[f] for f in FIELDS)


def parse_lines(*lines: str, tz: str = "UTC"):
    return parse_sacct(("\n".join([HEADER, *lines]) + "\n").encode(), tz)


class TestRealCaptures:
    def test_avery_sample(self, samples: Path) -> None:
        r = parse_sacct((samples / "sacct_avery.txt").read_bytes())
        assert r.bad_lines == 0
        assert r.step_lines == 0
        assert len(r.jobs) == 14
        by_id = r.jobs.to_frame().set_index("job_id")
        # Job 6: 4 CPUs, 2 GPUs, 8192M in AllocTRES.
        assert by_id.loc[6, ["cpus", "gpus", "mem_gib"]].tolist() == [4, 2, 8]
        assert by_id.loc[6, "start"] == epoch("2026-11-25T20:43:30")
        assert by_id.loc[6, "end"] == epoch("2026-11-25T20:44:10")
        # Array task 9_4 has JobIDRaw 9; 9_1 has 17.
        assert by_id.loc[17, "cpus"] == 1
        assert by_id.loc[12, "state"] == "CANCELLED"  # 'by 0' (the uid) is dropped
        # Rejected submission: GPUs from ReqTRES (AllocTRES empty); it never ran
        # (sacct's Start = End is no start: nothing was allocated).
        assert by_id.loc[26, "gpus"] == 9
        assert np.isnan(by_id.loc[26, "start"])
        assert by_id.loc[26, "elapsed"] == 0
        assert by_id.loc[11, "mem_gib"] == pytest.approx(500 / 1024)

    def test_scrontab_runs_and_a_cron_job_cancelled_while_it_waited(self, samples: Path) -> None:
        # Job 4: cancelled while waiting for its cron time; sacct says Start = Submit,
        # ElapsedRaw 23, NodeList "None assigned", AllocTRES empty: it never ran.
        # Job 5 ran four times (requeued for its next time, the last NODE_FAIL), job 6 once.
        r = parse_sacct((samples / "sacct_scrontab_runs.txt").read_bytes())
        assert r.bad_lines == 0
        jobs = r.jobs.to_frame()
        four = jobs[jobs["job_id"] == 4].iloc[0]
        assert np.isnan(four["start"])
        assert four["elapsed"] == 0
        ran = jobs[~jobs["start"].isna()]
        assert sorted(ran["elapsed"].tolist()) == [0, 1, 30, 60, 120]
        assert (ran["mem_gib"] == 1).all()
        assert (ran["cpus"] == 1).all()

    def test_pending_job_has_no_start(self, samples: Path) -> None:
        r = parse_sacct((samples / "sacct_avery-b.txt").read_bytes())
        pending = r.jobs.to_frame().set_index("job_id").loc[22]
        assert np.isnan(pending["start"])
        assert np.isnan(pending["end"])
        assert pending["cpus"] == 20

    def test_running_jobs_have_no_end(self, samples: Path) -> None:
        r = parse_sacct((samples / "sacct_avery_during_run_run1.txt").read_bytes())
        jobs = r.jobs.to_frame()
        running = jobs[jobs["state"] == "RUNNING"]
        assert len(running) == 8
        assert running["end"].isna().all()
        assert not running["start"].isna().any()

    def test_step_lines_are_skipped_not_counted_as_bad(self, samples: Path) -> None:
        r = parse_sacct(_with_needed_fields(samples))
        # What the capture itself says, read by plain splitting.
        text = (samples / "sacct_with_steps.txt").read_text().splitlines()
        header = text[1].split("|")
        rows = [dict(zip(header, raw.split("|"), strict=True)) for raw in text[2:]]
        steps = [c for c in rows if "." in c["JobID"]]
        jobs = {int(c["JobIDRaw"]): c for c in rows if "." not in c["JobID"]}
        assert (r.step_lines, len(r.jobs), r.bad_lines) == (len(steps), len(jobs), 0)
        assert (r.step_lines, len(r.jobs)) == (22, 24)
        parsed = r.jobs.to_frame().set_index("job_id")
        assert set(parsed.index) == set(jobs)
        for job_id, cells in jobs.items():
            assert parsed.loc[job_id, "user"] == cells["User"]
            assert parsed.loc[job_id, "cpus"] == int(cells["NCPUS"])
        assert set(r.jobs.users) == {"root", "alice", "bob", "carol"}

    def test_repeated_fields_read_as_once(self, samples: Path) -> None:
        """sacct prints a field as often as --format names it (State, NCPUS twice here)."""
        data = (samples / "sacct_repeated_fields.txt").read_bytes()
        r = parse_sacct(data)
        lines = data.decode().splitlines()
        header = lines[1].split("|")
        assert header.count("State") == 2  # the capture really repeats them
        assert header.count("NCPUS") == 2
        once = [h for i, h in enumerate(header) if h not in header[:i]]
        keep = [header.index(h) for h in once]
        single = "\n".join("|".join(row.split("|")[i] for i in keep) for row in lines[1:]) + "\n"
        expected = parse_sacct(single.encode())
        assert r.bad_lines == 0
        assert len(r.jobs) == len(lines) - 2
        assert r.jobs.to_frame().equals(expected.jobs.to_frame())
        assert set(r.jobs.states) == {"COMPLETED", "FAILED"}

    def test_repeated_fields_that_differ_are_an_error_naming_the_field(self,
                                                                       samples: Path) -> None:
        lines = (samples / "sacct_repeated_fields.txt").read_text().splitlines()
        cells = lines[3].split("|")
        cells[-1] = "64"  # the second NCPUS column of the second job
        lines[3] = "|".join(cells)
        with pytest.raises(SacctFormatError, match=r"NCPUS 2 times.*line 4: '2' vs '64'"):
            parse_sacct(("\n".join(lines) + "\n").encode())


class TestEndUnknown:
    """A finished state whose End is Unknown ended at Start + ElapsedRaw; only
    states that hold an allocation (running, completing, suspended) run to now."""

    FILE = Path(__file__).parent / "data" / "constructed" / "sacct_finished_end_unknown.txt"

    def test_finished_states_end_at_start_plus_elapsed(self) -> None:
        jobs = parse_sacct(self.FILE.read_bytes()).jobs.to_frame().set_index("job_id")
        for job_id in (101, 102, 103, 104, 105):
            row = jobs.loc[job_id]
            assert row["end"] == row["start"] + row["elapsed"], job_id
        assert jobs.loc[101, "end"] == epoch("2026-11-25T10:00:00")
        assert jobs.loc[103, "state"] == "CANCELLED"
        for job_id in (106, 107, 109):  # still holding their allocation
            assert np.isnan(jobs.loc[job_id, "end"]), job_id
        assert np.isnan(jobs.loc[108, "start"])
        assert np.isnan(jobs.loc[108, "end"])

    def test_they_count_nothing_up_to_now_and_are_not_current(self) -> None:
        from collector.binning import bin_usage, make_window

        jobs = parse_sacct(self.FILE.read_bytes()).jobs
        window = make_window(epoch("2026-11-25T14:00:00"), 3600, 24)
        usage = bin_usage(jobs, window, "avery")
        cpus = dict(zip(usage.users, usage.current["NCPUS"], strict=True))
        assert cpus == {"alice": 16 + 2, "bob": 4, "carol": 0}  # 106 + 107; 109
        hours = dict(zip(usage.users, usage.series["NCPUS"].sum(axis=1), strict=True))
        # alice: 101 (4 CPUs, 2 h) + 106 (16 CPUs, 13:00-14:00) + 107 (2 CPUs, 13:30-14:00).
        assert hours["alice"] == pytest.approx(4 * 2 + 16 + 2 * 0.5)
        # bob: 102 (2 CPUs, 10 min) + 103 (8 CPUs, 30 min) + 109 (4 CPUs, 13:10-14:00).
        assert hours["bob"] == pytest.approx(2 / 6 + 8 * 0.5 + 4 * 50 / 60)
        assert hours["carol"] == pytest.approx(1 / 60 + 1)


def _with_needed_fields(samples: Path) -> bytes:
    """The steps capture lacks some fields; rebuild its rows with all of them."""
    text = (samples / "sacct_with_steps.txt").read_text().splitlines()
    header = text[1].split("|")
    rows = []
    for raw in text[2:]:
        cells = dict(zip(header, raw.split("|"), strict=True))
        rows.append(line(jobid=cells["JobID"], jobid_raw=cells["JobIDRaw"], user=cells["User"],
                         qos=cells["QOS"], state=cells["State"], ncpus=cells["NCPUS"],
                         reqmem=cells["ReqMem"], alloctres=cells["AllocTRES"]))
    return ("\n".join([HEADER, *rows]) + "\n").encode()


class TestHeader:
    def test_fields_in_any_order_and_extra_fields_ignored(self) -> None:
        fields = ["Extra", *reversed(FIELDS)]
        values = dict(zip(FIELDS, line().split("|"), strict=True))
        values["Extra"] = "whatever|"[:-1]
        text = "|".join(fields) + "\n" + "|".join(values[f] for f in fields) + "\n"
        r = parse_sacct(text.encode())
        assert r.jobs.cpus.tolist() == [4]
        assert r.bad_lines == 0

    def test_missing_fields_are_named(self) -> None:
        header = "|".join(f for f in FIELDS if f not in ("AllocTRES", "NNodes"))
        with pytest.raises(SacctFormatError, match="lacks the field\\(s\\) NNodes, AllocTRES"):
            parse_sacct((header + "\n").encode())

    def test_empty_output_has_no_header(self) -> None:
        with pytest.raises(SacctFormatError, match="no header line"):
            parse_sacct(b"")

    def test_comment_lines_before_the_header(self) -> None:
        r = parse_sacct(("# sacct -P ...\n\n" + HEADER + "\n" + line() + "\n").encode())
        assert len(r.jobs) == 1

    def test_header_only_is_an_empty_table(self) -> None:
        r = parse_sacct((HEADER + "\n").encode())
        assert len(r.jobs) == 0
        assert r.bad_lines == 0

    def test_no_trailing_newline(self) -> None:
        r = parse_sacct((HEADER + "\n" + line()).encode())
        assert len(r.jobs) == 1


class TestBadLines:
    def test_each_kind_is_skipped_counted_and_located(self) -> None:
        r = parse_lines(
            line(jobid="1"),                              # line 2: good
            line(jobid="2") + "|extra",                   # line 3: too many fields
            "3|3|alice|avery",                            # line 4: too few
            line(jobid="5", ncpus="four"),                # line 5: non-numeric
            line(jobid="6", start="yesterday"),           # line 6: unreadable time
            line(jobid="7", alloctres="cpu=1,mem=lots"),  # line 7: bad TRES
            line(jobid="8", elapsed="-"),                 # line 8: non-numeric
            line(jobid="9"),                              # line 9: good
        )
        assert r.jobs.job_id.tolist() == [1, 9]
        assert r.bad_lines == 6
        assert r.bad_line_numbers == (3, 4, 5, 6, 7, 8)
        assert r.bad_reasons == {
            "wrong number of fields": 2, "non-numeric JobIDRaw/NCPUS/NNodes/ElapsedRaw/ReqCPUS/TimelimitRaw": 2,
            "unreadable time": 1, "unreadable TRES or ReqMem": 1,
        }
        assert "skipped 6 bad line(s) (line 3, 4, 5, 6, 7, 8)" in r.bad_summary()

    def test_a_plus_one_and_a_minus_one_line_are_both_caught(self) -> None:
        # The separator total matches; each line is still wrong.
        good = line(jobid="1")
        r = parse_lines(good + "|x", "|".join(good.split("|")[:-1]), line(jobid="3"))
        assert r.jobs.job_id.tolist() == [3]
        assert r.bad_line_numbers == (2, 3)

    def test_only_bad_lines(self) -> None:
        r = parse_lines("a|b", "c")
        assert len(r.jobs) == 0
        assert r.bad_lines == 2

    def test_blank_lines_are_ignored_and_numbers_stay_right(self) -> None:
        r = parse_lines(line(jobid="1"), "", line(jobid="3", ncpus="x"))
        assert r.bad_line_numbers == (4,)

    def test_invalid_utf8_is_replaced_not_fatal(self) -> None:
        raw = (HEADER + "\n").encode() + line(user="al\xffce").encode("latin-1") + b"\n"
        r = parse_sacct(raw)
        assert len(r.jobs) == 1
        assert r.bad_lines == 0
        assert "\ufffd" in r.jobs.users[0]

    def test_unknown_and_none_times_are_not_bad(self) -> None:
        r = parse_lines(line(start="Unknown", end="Unknown"), line(jobid="2", start="None", end="None"))
        assert r.bad_lines == 0
        assert np.isnan(r.jobs.start).all()


class TestValues:
    def test_memory_falls_back_to_reqmem_per_cpu_and_per_node(self) -> None:
        r = parse_lines(
            line(jobid="1", ncpus="4", reqmem="1000Mc", alloctres=""),
            line(jobid="2", nnodes="2", ncpus="8", reqmem="16Gn", alloctres=""),
            line(jobid="3", reqmem="3G", alloctres="cpu=4"),
        )
        assert r.jobs.mem_gib.tolist() == pytest.approx([4000 / 1024, 32, 3])

    def test_gpus_from_alloc_not_from_request(self) -> None:
        r = parse_lines(line(reqtres="cpu=4,gres/gpu=4", alloctres="cpu=4,gres/gpu=2,gres/gpu:a100=2"))
        assert r.jobs.gpus.tolist() == [2]

    def test_alloc_memory_wins_over_reqmem(self) -> None:
        r = parse_lines(line(reqmem="64G", alloctres="cpu=4,mem=1024M"))
        assert r.jobs.mem_gib.tolist() == [1]


class TestTimeZones:
    def test_file_times_are_local_to_the_site_zone(self) -> None:
        r = parse_lines(line(start="2026-07-01T08:00:00", end="2026-07-01T09:00:00"),
                        tz="America/New_York")
        assert r.jobs.start[0] == epoch("2026-07-01T12:00:00")  # EDT = UTC-4

    def test_a_job_across_the_autumn_change_lasts_its_real_length(self) -> None:
        # 2026-11-01: 02:00 EDT becomes 01:00 EST. 00:30 EDT -> 03:30 EST is 4 h.
        r = parse_lines(line(start="2026-11-01T00:30:00", end="2026-11-01T03:30:00"),
                        tz="America/New_York")
        assert r.jobs.end[0] - r.jobs.start[0] == 4 * 3600

    def test_a_job_across_the_spring_change_lasts_its_real_length(self) -> None:
        # 2026-03-08: 02:00 EST becomes 03:00 EDT. 01:30 EST -> 03:30 EDT is 1 h.
        r = parse_lines(line(start="2026-03-08T01:30:00", end="2026-03-08T03:30:00"),
                        tz="America/New_York")
        assert r.jobs.end[0] - r.jobs.start[0] == 3600

    def test_utc_input_needs_no_zone_conversion(self) -> None:
        r = parse_lines(line(start="2026-11-01T01:30:00"))
        assert r.jobs.start[0] == epoch("2026-11-01T01:30:00")

    def test_a_time_in_the_skipped_spring_hour_moves_forward(self) -> None:
        r = parse_lines(line(start="2026-03-08T02:30:00", end="2026-03-08T04:00:00"),
                        tz="America/New_York")
        assert r.jobs.start[0] == epoch("2026-03-08T07:30:00")  # 03:30 EDT, moved by the gap


class TestOnlySteps:
    def test_a_file_of_step_lines_only_is_an_empty_table(self) -> None:
        r = parse_lines(line(jobid="1.batch", user=""), line(jobid="1.extern", user=""))
        assert len(r.jobs) == 0
        assert r.step_lines == 2
        assert r.bad_lines == 0


class TestReadPaths:
    def test_one_unreadable_time_changes_nothing_else(self, samples: Path) -> None:
        """A bad time sends the file down the slower, row-checking path; the
        other rows must come out exactly as on the fast path."""
        clean = (samples / "sacct_avery.txt").read_bytes()
        cells = clean.decode().splitlines()[-1].split("|")
        cells[5] = "2026-11-31T25:00:00"  # Start, in this capture's field order
        dirty = clean + ("|".join(cells) + "\n").encode()
        a, b = parse_sacct(clean, "America/New_York"), parse_sacct(dirty, "America/New_York")
        assert b.bad_lines == 1
        assert b.bad_reasons == {"unreadable time": 1}
        assert a.jobs.to_frame().equals(b.jobs.to_frame())

    def test_non_integer_elapsed_is_one_bad_line(self, samples: Path) -> None:
        clean = (samples / "sacct_avery-b.txt").read_bytes()
        cells = clean.decode().splitlines()[-1].split("|")
        cells[8] = "1.5"  # ElapsedRaw
        dirty = clean + ("|".join(cells) + "\n").encode()
        b = parse_sacct(dirty)
        assert b.bad_line_numbers == (8,)
        assert len(b.jobs) == len(parse_sacct(clean).jobs)

    def test_an_unreadable_count_is_one_bad_line(self) -> None:
        """Counts are read as integers by the fast path; one that is not a
        count sends the file down the row-checking path and only it is bad."""
        good = [line(jobid=str(i)) for i in range(1, 4)]
        for ncpus, reqcpus in (("four", "4"), ("4", "-2"), ("4", "")):
            r = parse_lines(*good, line(jobid="9", ncpus=ncpus, reqcpus=reqcpus))
            assert r.bad_lines == 1, (ncpus, reqcpus)
            assert r.bad_line_numbers == (5,)
            assert r.jobs.job_id.tolist() == [1, 2, 3]
            assert r.jobs.cpus.tolist() == [4.0] * 3


class TestArrowBuffers:
    @given(st.lists(st.lists(st.one_of(st.none(), st.integers(-2**53, 2**53)), max_size=40),
                    min_size=1, max_size=5), st.integers(0, 3))
    def test_to_floats_matches_arrow_across_chunks_nulls_and_slices(
            self, chunks: list[list[int | None]], cut: int) -> None:
        arrays = [pa.array(c, pa.int64()) for c in chunks]
        arrays = [a.slice(min(cut, len(a))) for a in arrays]   # chunks that start at an offset
        column = pa.chunked_array(arrays, pa.int64())
        want = [np.nan if v is None else float(v) for v in column.to_pylist()]
        np.testing.assert_array_equal(to_floats(column), np.array(want, dtype=np.float64))
        stamps = column.cast(pa.timestamp("s"))
        np.testing.assert_array_equal(to_floats(stamps, fill=-1.0),
                                      np.nan_to_num(np.array(want), nan=-1.0))

    @given(st.lists(st.booleans(), max_size=70))
    def test_from_bools_is_the_same_booleans_in_arrow(self, values: list[bool]) -> None:
        assert from_bools(np.array(values, dtype=bool)).to_pylist() == values


class TestMappedFiles:
    """A saved file is parsed mapped into memory (collect._mapped); the result
    must be the one its bytes give, whatever the file holds."""

    @pytest.mark.parametrize("text", [
        "\n".join([HEADER, line(jobid="1"), line(jobid="2", user="zoë")]) + "\n",  # not ASCII
        "\n".join([HEADER, line(jobid="1")]),                                  # no final newline
        "\n".join([HEADER, line(jobid="1"), "1|2|3", line(jobid="3")]) + "\n",  # a short line
        "\n".join([HEADER, line(jobid="1")]).encode().decode() + "\n\xff\n",     # invalid UTF-8
        "",
    ])
    def test_mapped_equals_bytes(self, tmp_path: Path, text: str) -> None:
        raw = text.encode("utf-8", "surrogateescape").replace("\xff".encode(), b"\xff")
        path = tmp_path / "sacct.txt"
        path.write_bytes(raw)
        mapped = _mapped(path)
        assert isinstance(mapped, mmap.mmap) == bool(raw)
        try:
            want = parse_sacct(raw)
        except SacctFormatError as err:
            with pytest.raises(SacctFormatError, match=re.escape(str(err))):
                parse_sacct(mapped)
            return
        got = parse_sacct(mapped)
        assert got.jobs.to_frame().equals(want.jobs.to_frame())
        assert (got.bad_lines, got.bad_line_numbers) == (want.bad_lines, want.bad_line_numbers)

    def test_every_sample_capture(self, samples: Path) -> None:
        for path in sorted(samples.glob("sacct_*.txt")):
            if path.name == "sacct_with_steps.txt":   # another --format: fails alike, tested above
                continue
            want = parse_sacct(path.read_bytes())
            got = parse_sacct(_mapped(path))
            assert got.jobs.to_frame().equals(want.jobs.to_frame()), path.name
            assert got.bad_lines == want.bad_lines, path.name


def test_account_and_partition_are_read_and_a_pending_job_counts_under_its_first_partition(
        ) -> None:
    jobs = parse_lines(
        line(jobid="1", account="avery", partition="gpu"),
        line(jobid="2", account="avery-lab", partition="hpg-default"),
        line(jobid="3", state="PENDING", start="Unknown", end="Unknown", elapsed="0",
             account="avery", partition="hpg-default,gpu,bigmem")).jobs
    assert [jobs.accounts[a] for a in jobs.account] == ["avery", "avery-lab", "avery"]
    assert [jobs.partitions[p] for p in jobs.partition] == ["gpu", "hpg-default", "hpg-default"]
    by_partition = jobs.grouped("partition")
    assert [by_partition.users[u] for u in by_partition.user] == ["gpu", "hpg-default",
                                                                  "hpg-default"]
    assert jobs.grouped("user") is jobs


def test_a_saved_file_without_account_or_partition_groups_under_not_known() -> None:
    fields = [f for f in FIELDS if f not in ("Account", "Partition")]
    text = "|".join(fields) + "\n" + "|".join(
        line(jobid="1").split("|")[i] for i, f in enumerate(FIELDS) if f in fields) + "\n"
    jobs = parse_sacct(text.encode(), "UTC").jobs
    assert len(jobs) == 1
    assert (jobs.accounts, jobs.partitions) == (("",), ("",))
