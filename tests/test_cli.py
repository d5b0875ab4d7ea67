"""`librarian collect` end to end: real files, a fake sacct on PATH, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from collector.cli import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE, main, parse_now
from collector.lock import DataLock
from collector.snapshot import SCHEMA_PATH
from tests import fake_sacct
from tests.conftest import config_text

NOW = "2026-11-25T21:00:00+00:00"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "librarian.toml").write_text(config_text(timezone="UTC"))
    return tmp_path


def snapshot(site: Path, qos: str) -> dict:
    return json.loads((site / "data" / f"data_{qos}.json").read_text())


def run(site: Path, *args: str) -> int:
    return main(["collect", "--config", str(site / "librarian.toml"), *args])


class TestFromSacct:
    def test_runs_sacct_once_for_all_qos_and_writes_each(self, site: Path, samples: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        both = site / "both.txt"
        both.write_bytes((samples / "sacct_avery.txt").read_bytes()
                         + b"\n".join((samples / "sacct_avery-b.txt").read_bytes().splitlines()[2:]) + b"\n")
        bin_dir = site / "bin"
        fake_sacct.install(bin_dir, prints=both)
        monkeypatch.setenv("PATH", fake_sacct.path_with(bin_dir))
        assert run(site, "--now", NOW, "--no-plots") == EXIT_OK
        every = fake_sacct.recorded_calls(bin_dir)
        calls = [a for a in every if "--allocations" in a]
        # The first run backfills the 1-day window in UTC-day chunks; every
        # query asks for both QoS at once. Then one query asks the steps of the
        # jobs that ended, by id.
        (usage,) = [a for a in every if "--allocations" not in a]
        assert any(a.startswith("--jobs=") for a in usage)
        assert "--format=JobIDRaw,JobID,Submit,ElapsedRaw,TotalCPU,MaxRSS,TRESUsageInMax,"\
               "TRESUsageInAve" \
            in usage
        assert all("--qos=avery,avery-b" in args for args in calls)
        assert [(a[5], a[6]) for a in calls] == [
            ("--starttime=2026-11-24T21:00:00", "--endtime=2026-11-25T00:00:00"),
            ("--starttime=2026-11-25T00:00:00", "--endtime=2026-11-25T21:00:00")]
        a, b = snapshot(site, "avery"), snapshot(site, "avery-b")
        assert set(a["users"]) == {"alice", "bob", "carol"}
        assert set(b["users"]) == {"alice", "bob", "carol"}
        # bob in avery-b: job 15 (8 CPUs, 90 s) and job 21 (2 CPUs, 30 s), hour bin 20:00.
        assert b["observables"]["NCPUS"]["bob"][-1] * 3600 == pytest.approx(8 * 90 + 2 * 30, abs=0.5)
        assert a["metadata"]["source"] == "sacct"

    def test_failing_sacct_keeps_the_previous_snapshot(self, site: Path, samples: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
        assert run(site, "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW,
                   "--no-plots") == EXIT_OK
        path = site / "data" / "data_avery.json"
        before, mtime = path.read_bytes(), path.stat().st_mtime_ns
        bin_dir = site / "bin"
        fake_sacct.install(bin_dir, exit_code=1, stderr="sacct: error: slurmdbd: Connection refused")
        monkeypatch.setenv("PATH", fake_sacct.path_with(bin_dir))
        assert run(site, "--now", NOW) == EXIT_FAILED
        err = capsys.readouterr().err
        assert "previous snapshots kept" in err
        assert "Connection refused" in err
        assert "command: sacct --allusers" in err
        assert path.read_bytes() == before
        assert path.stat().st_mtime_ns == mtime

    def test_unreadable_sacct_output(self, site: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
        junk = site / "junk.txt"
        junk.write_text("sacct: fatal: something odd\n")
        bin_dir = site / "bin"
        fake_sacct.install(bin_dir, prints=junk)
        monkeypatch.setenv("PATH", fake_sacct.path_with(bin_dir))
        assert run(site, "--now", NOW) == EXIT_FAILED
        assert "unreadable sacct output" in capsys.readouterr().err
        assert not (site / "data" / "data_avery.json").exists()

    def test_time_out(self, site: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
        (site / "librarian.toml").write_text(
            config_text().replace("sacct_timeout_seconds = 20", "sacct_timeout_seconds = 0.5"))
        bin_dir = site / "bin"
        fake_sacct.install(bin_dir, sleep=30)
        monkeypatch.setenv("PATH", fake_sacct.path_with(bin_dir))
        assert run(site, "--now", NOW) == EXIT_FAILED
        assert "did not answer within 0.5 s" in capsys.readouterr().err


class TestFromFile:
    def test_each_snapshot_uses_only_its_qos(self, site: Path, samples: Path) -> None:
        assert run(site, "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW,
                   "--no-plots") == EXIT_OK
        assert snapshot(site, "avery")["users"] == ["bob", "alice", "carol"]
        assert snapshot(site, "avery-b")["users"] == []

    def test_only_the_named_qos(self, site: Path, samples: Path) -> None:
        assert run(site, "--sacct-file", str(samples / "sacct_avery-b.txt"), "--qos", "avery-b",
                   "--now", NOW, "--no-plots") == EXIT_OK
        assert not (site / "data" / "data_avery.json").exists()
        assert snapshot(site, "avery-b")["users"]

    def test_snapshots_match_the_schema(self, site: Path, samples: Path) -> None:
        assert run(site, "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW,
                   "--no-plots") == EXIT_OK
        schema = json.loads(SCHEMA_PATH.read_text())
        for qos in ("avery", "avery-b"):
            jsonschema.Draft202012Validator(schema).validate(snapshot(site, qos))

    def test_missing_fields_are_named(self, site: Path, samples: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
        assert run(site, "--sacct-file", str(samples / "sacct_with_steps.txt"), "--now", NOW) \
            == EXIT_FAILED
        err = capsys.readouterr().err
        assert "sacct_with_steps.txt" in err
        assert "lacks the field(s) Submit, Start, End, ElapsedRaw, NNodes, ReqTRES" in err

    def test_bad_lines_are_warned_and_recorded(self, site: Path, samples: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
        lines = (samples / "sacct_avery.txt").read_text().splitlines()
        lines[2] = lines[2].replace("|4|8192M|", "|four|8192M|")  # file line 3
        assert "four" in lines[2]
        lines.insert(5, "truncated|line")  # file line 6
        bad = site / "bad.txt"
        bad.write_text("\n".join(lines) + "\n")
        assert run(site, "--sacct-file", str(bad), "--now", NOW, "--no-plots") == EXIT_OK
        err = capsys.readouterr().err
        assert "WARNING" in err
        assert "skipped 2 bad line(s) (line 3, 6)" in err
        meta = snapshot(site, "avery")["metadata"]
        assert meta["skipped_lines"] == 2
        assert meta["skipped_line_numbers"] == [3, 6]
        assert "alice" in snapshot(site, "avery")["users"]  # her other jobs still count

    def test_empty_result_is_a_valid_empty_snapshot(self, site: Path, samples: Path) -> None:
        header = (samples / "sacct_avery.txt").read_text().splitlines()[1]
        empty = site / "empty.txt"
        empty.write_text(header + "\n")
        assert run(site, "--sacct-file", str(empty), "--now", NOW, "--no-plots") == EXIT_OK
        snap = snapshot(site, "avery")
        assert snap["users"] == []
        assert len(snap["time_idxs"]) == 24

    def test_plots_are_written_unless_asked_not_to(self, site: Path, samples: Path) -> None:
        assert run(site, "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW) == EXIT_OK
        pngs = sorted(p.name for p in (site / "data").glob("*.png"))
        assert pngs == sorted(f"{o}_{q}.png" for o in ("NCPUS", "NGPUS", "MEMORY", "NJOBS")
                              for q in ("avery", "avery-b"))
        assert (site / "data" / "NCPUS_avery.png").read_bytes().startswith(b"\x89PNG")
        assert not list((site / "data").glob("*.pdf"))     # PDF only when configured

    def test_the_configured_formats_are_drawn(self, site: Path, samples: Path) -> None:
        cfg = site / "librarian.toml"
        cfg.write_text(cfg.read_text() + '\n[plots]\nformats = ["pdf", "svg"]\n')
        assert run(site, "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW) == EXIT_OK
        assert (site / "data" / "NCPUS_avery.pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in (site / "data" / "MEMORY_avery-b.svg").read_bytes()[:500]
        assert not list((site / "data").glob("*.png"))


class TestUsageErrors:
    def test_bad_config_exits_2_naming_file_and_key(self, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
        cfg = tmp_path / "librarian.toml"
        cfg.write_text(config_text().replace("window_days = 1", "window_dayz = 1"))
        assert main(["collect", "--config", str(cfg)]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert f"{cfg}: collect.window_dayz: unknown key" in err

    def test_missing_config(self, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("LIBRARIAN_CONFIG", raising=False)
        assert main(["collect"]) == EXIT_USAGE
        assert "librarian.toml: no such file" in capsys.readouterr().err

    def test_config_from_the_environment(self, site: Path, samples: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LIBRARIAN_CONFIG", str(site / "librarian.toml"))
        assert main(["collect", "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW,
                     "--no-plots"]) == EXIT_OK

    def test_unknown_qos(self, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert run(site, "--qos", "nope") == EXIT_USAGE
        assert "no QoS named 'nope'" in capsys.readouterr().err

    def test_bad_now(self, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert run(site, "--now", "tomorrowish") == EXIT_USAGE
        assert "--now: not a time: 'tomorrowish'" in capsys.readouterr().err

    def test_missing_sacct_file(self, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert run(site, "--sacct-file", str(site / "nope.txt")) == EXIT_USAGE
        assert "no such file" in capsys.readouterr().err

    def test_a_second_run_exits_while_the_first_holds_the_lock(
            self, site: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
        with DataLock(site / "data"):
            code = run(site, "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW)
        assert code == EXIT_LOCKED
        assert f"another librarian run holds {site / 'data' / '.librarian.lock'} (pid {os.getpid()})" \
            in capsys.readouterr().err
        assert not (site / "data" / "data_avery.json").exists()


class TestNow:
    def test_epoch_seconds(self) -> None:
        assert parse_now("1764000000", "UTC") == 1764000000

    def test_iso_with_offset(self) -> None:
        assert parse_now("2025-11-24T11:00:00-05:00", "UTC") == 1764000000

    def test_iso_without_offset_is_in_the_site_zone(self) -> None:
        assert parse_now("2025-11-24T11:00:00", "America/New_York") == 1764000000

    @pytest.mark.parametrize("text", ["", "nan", "inf", "25/11/2026"])
    def test_rejects(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a time"):
            parse_now(text, "UTC")


class TestConsoleScript:
    def test_installed_command_and_logging_levels(self, site: Path, samples: Path) -> None:
        exe = Path(sys.executable).with_name("librarian")
        base = [str(exe), "collect", "--config", str(site / "librarian.toml"),
                "--sacct-file", str(samples / "sacct_avery.txt"), "--now", NOW, "--no-plots"]
        quiet = subprocess.run([*base, "-q"], capture_output=True, text=True, check=False)
        assert quiet.returncode == 0
        assert quiet.stderr == ""
        assert "avery: 3 users" in quiet.stdout
        loud = subprocess.run(base, capture_output=True, text=True, check=False)
        assert "librarian: INFO: avery: 3 users" in loud.stderr

    def test_version(self) -> None:
        out = subprocess.run([sys.executable, "-m", "collector", "--version"],
                             capture_output=True, text=True, check=True)
        assert out.stdout.startswith("librarian 0.")


def test_demo_writes_a_month_for_both_qos(tmp_path: Path) -> None:
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--no-plots", "--no-serve", "-q"]) == EXIT_OK
    schema = json.loads(SCHEMA_PATH.read_text())
    for qos in ("avery", "avery-b"):
        snap = json.loads((tmp_path / "demo" / "data" / f"data_{qos}.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(snap)
        assert len(snap["time_idxs"]) == 720
        assert len(snap["users"]) >= 10
        assert snap["metadata"]["skipped_lines"] == 0
    peak = max(map(sum, zip(*json.loads((tmp_path / "demo" / "data" / "data_avery.json")
                                        .read_text())["observables"]["NCPUS"].values(), strict=True)))
    assert 200 < peak <= 430 + 1e-6  # busy, yet within the QoS limit the queue enforces
    config = (tmp_path / "demo" / "librarian.toml").read_text()
    assert config == textwrap.dedent(config)  # a readable copy of the example


def test_collect_never_imports_pandas_or_matplotlib_without_plots(site: Path, samples: Path) -> None:
    """pandas costs a quarter of a second per collection and matplotlib more:
    the scrontab path (collect --no-plots) must load neither."""
    code = (
        "import sys; from collector.cli import main; "
        f"rc = main(['collect', '--config', {str(site / 'librarian.toml')!r}, '--sacct-file', "
        f"{str(samples / 'sacct_avery.txt')!r}, '--now', {NOW!r}, '--no-plots', '-q']); "
        "print(rc, 'pandas' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["0", "False", "False"]


def test_live_collect_with_the_job_store_never_imports_pandas(site: Path, samples: Path) -> None:
    """The same for the live path: sacct on PATH, the job store written and read
    (building Arrow arrays from Python values would import pandas)."""
    bin_dir = site / "bin"
    fake_sacct.install(bin_dir, prints=samples / "sacct_avery.txt")
    args = ["collect", "--config", str(site / "librarian.toml"), "--now", NOW, "--no-plots", "-q"]
    code = (
        "import sys; from collector.cli import main; "
        f"rc = main({args!r}); rc2 = main({args!r}); "
        "print(rc, rc2, 'pandas' in sys.modules, 'matplotlib' in sys.modules)"
    )
    env = {**os.environ, "PATH": fake_sacct.path_with(bin_dir)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.split()[-4:] == ["0", "0", "False", "False"]
    assert (site / "data" / "store" / "hot.arrow").exists()
