"""Operations: the status file, `librarian run`, the scrontab lines, the watchdog's rules."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.figures import stale_message
from app.operations import doctor, run_cycle
from collector.collect import collect
from collector.config import ConfigError, load_config, parse_config
from collector.schedule import Schedule, cron_every, installed_lines, last_runs, scrontab_text
from collector.status import failures, read_status, record_step, write_status
from collector.watchdog import reenabled, stuck_jobs, watchdog
from tests import fake_sacct
from tests.conftest import config_text

NOW = "2026-11-25T21:00:00+00:00"


def write_config(folder: Path, slurm_bin: Path, extra: str = "") -> Path:
    """A test configuration whose Slurm commands come from `slurm_bin`."""
    path = folder / "librarian.toml"
    path.write_text(config_text().replace('data_dir = "data"',
                                          f'data_dir = "data"\nslurm_bin = "{slurm_bin}"') + extra)
    return path


class TestStatus:
    def test_record_keeps_the_last_success(self, tmp_path: Path) -> None:
        s = record_step({"steps": {}}, "collect", True, 100.0, 2.5, detail="avery: 3 users")
        s = record_step(s, "collect", False, 700.0, 300.0, "sacct did not answer")
        write_status(tmp_path, s)
        back = read_status(tmp_path)["steps"]["collect"]
        assert back["ok"] is False
        assert back["error"] == "sacct did not answer"
        assert back["last_success"] == 100.0
        assert failures(read_status(tmp_path)) == [("collect", "sacct did not answer", 700.0)]

    def test_missing_or_damaged_status_is_empty(self, tmp_path: Path) -> None:
        assert read_status(tmp_path) == {"steps": {}}
        (tmp_path / "status.json").write_text("{not json")
        assert failures(read_status(tmp_path)) == []

    def test_the_warning_names_the_failed_step(self) -> None:
        text = stale_message("avery", None, [("collect", "sacct exited with status 1", 1_764_000_000)],
                             "America/New_York", 10)
        assert text == "The last collect failed at 2025-11-24 11:00 EST: sacct exited with status 1"
        public = stale_message("avery", None, [("collect", "secret detail", 1_764_000_000)],
                               "UTC", 10, with_errors=False)
        assert "secret detail" not in public
        assert stale_message("avery", None, [], "UTC", 10) is None


class TestRun:
    def test_a_failing_sacct_keeps_the_snapshot_records_the_failure_and_still_exports(
            self, tmp_path: Path, samples: Path) -> None:
        bin_dir = tmp_path / "slurm"
        fake_sacct.install(bin_dir, prints=samples / "sacct_avery.txt")
        config = load_config(write_config(tmp_path, bin_dir))
        first = run_cycle(config, now=1795640400)  # 2026-11-25T21:00Z
        assert [(r.step, r.ok) for r in first] == [("collect", True), ("export", True)]
        snapshot = tmp_path / "data" / "data_avery.json"
        before = snapshot.read_bytes()
        assert (tmp_path / "data" / "site" / "index.html").exists()

        fake_sacct.install(bin_dir, exit_code=1, stderr="sacct: error: slurmdbd: Connection refused")
        second = run_cycle(config, now=1795641000)
        assert [(r.step, r.ok) for r in second] == [("collect", False), ("export", True)]
        assert snapshot.read_bytes() == before
        status = read_status(tmp_path / "data")
        assert "Connection refused" in status["steps"]["collect"]["error"]
        assert status["steps"]["collect"]["last_success"] is not None
        manifest = json.loads((tmp_path / "data" / "site" / "data" / "manifest.json").read_text())
        assert manifest["failures"]
        assert manifest["failures"][0].startswith("The last collect failed at ")

    def test_run_command_exit_status(self, tmp_path: Path, samples: Path) -> None:
        bin_dir = tmp_path / "slurm"
        fake_sacct.install(bin_dir, exit_code=1, stderr="boom")
        write_config(tmp_path, bin_dir)
        exe = Path(sys.executable).with_name("librarian")
        out = subprocess.run([str(exe), "run", "--config", str(tmp_path / "librarian.toml")],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 1
        assert "collect: FAILED" in out.stdout
        assert "export: ok" in out.stdout


class TestScrontab:
    def test_lines_with_absolute_paths_names_and_logs(self, tmp_path: Path) -> None:
        (tmp_path / "librarian.toml").write_text(config_text())
        exe = Path(sys.executable).with_name("librarian")
        out = subprocess.run([str(exe), "scrontab", "--config", str(tmp_path / "librarian.toml")],
                             capture_output=True, text=True, check=True).stdout
        logs = tmp_path.resolve() / "data" / "logs"
        assert f"#SCRON --export=NONE --job-name=librarian-run --time=00:20:00 --output={logs}/librarian-run-%j.log" in out
        assert f"*/10 * * * * {exe} run --config {tmp_path.resolve() / 'librarian.toml'} -q" in out
        assert "#SCRON --export=NONE --job-name=librarian-watchdog --time=00:05:00" in out
        assert f"*/5 * * * * {exe} watchdog --config" in out
        assert "OnCalendar=*:0/10" in out
        assert logs.is_dir()

    def test_text_quotes_paths_with_spaces(self) -> None:
        text = scrontab_text(Schedule(Path("/opt/my lib/librarian"), Path("/etc/lib rarian.toml"),
                                      Path("/var/log"), "librarian-run", "librarian-watchdog",
                                      "librarian-digest"))
        assert "'/opt/my lib/librarian' run --config '/etc/lib rarian.toml' -q" in text

    def test_the_interval_and_the_digest_line(self) -> None:
        s = Schedule(Path("/opt/l"), Path("/etc/l.toml"), Path("/var/log"), "r", "w", "d",
                     interval_minutes=1, digest_period="month", digest_configured=True)
        text = scrontab_text(s)
        assert "\n* * * * * /opt/l run --config /etc/l.toml -q\n" in text
        assert "\n* * * * * /opt/l watchdog --config /etc/l.toml\n" in text
        assert "#SCRON --export=NONE --job-name=d --time=00:10:00 --output=/var/log/d-%j.log\n" \
               "0 7 1 * * /opt/l digest --config /etc/l.toml --period month -q\n" in text
        assert set(installed_lines(text, ("r", "w", "d"))) == {"r", "w", "d"}
        quiet = scrontab_text(Schedule(Path("/opt/l"), Path("/etc/l.toml"), Path("/var/log"),
                                       "r", "w", "d", interval_minutes=120))
        assert "0 */2 * * * /opt/l run" in quiet
        assert "*/30 * * * * /opt/l watchdog" in quiet
        assert set(installed_lines(quiet, ("r", "w", "d"))) == {"r", "w"}   # no channel: commented

    @pytest.mark.parametrize(("minutes", "cron"), [(1, "* * * * *"), (10, "*/10 * * * *"),
                                                   (60, "0 * * * *"), (360, "0 */6 * * *")])
    def test_cron_intervals(self, minutes: int, cron: str) -> None:
        assert cron_every(minutes) == cron

    @pytest.mark.parametrize("minutes", [7, 90, 600])
    def test_an_interval_cron_cannot_keep_is_refused_naming_the_key(self, minutes: int) -> None:
        with pytest.raises(ValueError, match="not a cron interval"):
            cron_every(minutes)
        with pytest.raises(ConfigError) as err:
            parse_config({"qos": [{"name": "a"}], "app": {"collect_interval_minutes": minutes}},
                         "t.toml", Path("."))
        assert err.value.key == "app.collect_interval_minutes"

    def test_installed_lines_and_last_runs(self) -> None:
        text = ("# mine\n#SCRON -J my-job\n0 * * * * true\n"
                "#SCRON --export=NONE --job-name=librarian-run --time=00:20:00\n"
                "*/10 * * * * /x run\n#SCRON --job-name librarian-watchdog\n*/5 * * * * /x w\n")
        assert installed_lines(text, ("librarian-run", "librarian-watchdog")) == {
            "librarian-run": "*/10 * * * * /x run", "librarian-watchdog": "*/5 * * * * /x w"}
        runs = last_runs("7|librarian-run|REQUEUED|0:0|2026-12-02T04:23:09|2026-12-02T04:23:10\n"
                         "8|librarian-watchdog|REQUEUED|1:0|2026-12-02T04:23:09|2026-12-02T04:23:10\n"
                         "9|librarian-digest|PENDING|0:0|None|Unknown\n")
        assert runs["librarian-run"].ok
        assert not runs["librarian-watchdog"].ok      # it ran and exited 1
        assert runs["librarian-digest"].ok            # not run yet

    def test_a_disabled_entry_of_librarians_is_enabled_again_and_no_other(self) -> None:
        text = ("#DISABLED: #SCRON --export=NONE --job-name=librarian-run --time=00:20:00\n"
                "#DISABLED: */10 * * * * /x run\n"
                "#DISABLED: #SCRON --job-name=my-job\n#DISABLED: 0 * * * * mine\n"
                "#SCRON --job-name=librarian-watchdog\n*/5 * * * * /x w\n")
        fixed, enabled = reenabled(text, ("librarian-run", "librarian-watchdog"))
        assert enabled == ["librarian-run"]
        assert fixed == ("#SCRON --export=NONE --job-name=librarian-run --time=00:20:00\n"
                         "*/10 * * * * /x run\n"
                         "#DISABLED: #SCRON --job-name=my-job\n#DISABLED: 0 * * * * mine\n"
                         "#SCRON --job-name=librarian-watchdog\n*/5 * * * * /x w\n")
        assert reenabled(fixed, ("librarian-run",)) == (fixed, [])


SQUEUE = """\
31|librarian-run|JobHeldUser
32|librarian-watchdog|JobHeldAdmin
33|my-analysis|JobHeldUser
34|librarian-run|QOSGrpCpuLimit
35|librarian-run|launch failed requeued held
36|librarian-run|user env retrieval failed requeued held
37|librarian-run|Priority
"""


class TestWatchdogRules:
    def test_only_librarian_jobs_that_are_stuck(self) -> None:
        jobs = stuck_jobs(SQUEUE, ("librarian-run", "librarian-watchdog"))
        assert [j.job_id for j in jobs] == ["31", "32", "35", "36"]

    def test_dry_run_does_nothing(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        calls: list[list[str]] = []

        def run(args: list[str], **_: object) -> subprocess.CompletedProcess[bytes]:
            calls.append(args)
            return subprocess.CompletedProcess(args, 0, SQUEUE.encode(), b"")

        caplog.set_level("INFO", logger="librarian.watchdog")
        watchdog(None, ("librarian-run", "librarian-watchdog"), 0, dry_run=True, runner=run)
        assert all(c[0] == "squeue" for c in calls)
        assert "would release job 31 (librarian-run)" in caplog.text


class TestDoctor:
    def test_problems_come_with_fixes(self, tmp_path: Path) -> None:
        write_config(tmp_path, tmp_path / "nope",
                     f'[[deploy]]\nkind = "pages"\nremote = "{tmp_path / "missing.git"}"\n')
        exe = Path(sys.executable).with_name("librarian")
        out = subprocess.run([str(exe), "doctor", "--config", str(tmp_path / "librarian.toml")],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 1
        assert "PROBLEM sacct answers:" in out.stdout
        assert "fix: sacct must run from the folder in site.slurm_bin" in out.stdout
        assert "ok      data folder writable" in out.stdout
        assert "ok      job store: none yet" in out.stdout
        assert "PROBLEM deploy target 'pages' reachable" in out.stdout

    def test_a_damaged_or_late_job_store_is_reported(self, tmp_path: Path, samples: Path) -> None:
        bin_dir = tmp_path / "bin"
        fake_sacct.install(bin_dir, prints=samples / "sacct_avery.txt")
        write_config(tmp_path, bin_dir)
        config = load_config(tmp_path / "librarian.toml")
        collect(config, time.time() - 3 * 3600, plots=False)
        checks = {c.name: c for c in doctor(config)}
        assert not checks["job store"].ok
        assert "synced 180 min ago" in checks["job store"].detail
        hot = config.site.data_dir / "store" / "hot.arrow"
        hot.write_bytes(hot.read_bytes()[:-1])
        checks = {c.name: c for c in doctor(config)}
        assert not checks["job store"].ok
        assert "does not match its checksum" in checks["job store"].detail
        assert "rebuilds it" in checks["job store"].fix


class TestSlurmFailuresAreOneLine:
    """A Slurm command that hangs, fails or cannot run ends in one clear line
    (or a failed check with its fix), never a traceback."""

    def test_watchdog_with_a_hung_squeue(self, tmp_path: Path) -> None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "squeue").write_text("#!/bin/sh\nsleep 30\n")
        (bin_dir / "squeue").chmod(0o755)
        write_config(tmp_path, bin_dir, "\n[ops]\ncommand_timeout_seconds = 1\n")
        exe = Path(sys.executable).with_name("librarian")
        out = subprocess.run([str(exe), "watchdog", "--config", str(tmp_path / "librarian.toml")],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 1, out
        assert "Traceback" not in out.stderr, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, out.stderr
        assert "squeue did not answer within 1 s" in lines[0]
        assert f"command: {bin_dir / 'squeue'} --me" in lines[0]

    def test_doctor_with_a_sacct_that_cannot_be_executed(self, tmp_path: Path) -> None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for name in ("sacct", "sacctmgr", "squeue"):
            (bin_dir / name).write_text("#!/bin/sh\necho hello\n")
            (bin_dir / name).chmod(0o755)
        (bin_dir / "sacct").chmod(0o644)  # not executable
        write_config(tmp_path, bin_dir)
        exe = Path(sys.executable).with_name("librarian")
        out = subprocess.run([str(exe), "doctor", "--config", str(tmp_path / "librarian.toml")],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 1, out
        assert "Traceback" not in out.stderr + out.stdout
        assert f"PROBLEM sacct answers: cannot execute {bin_dir / 'sacct'}" in out.stdout
        assert "fix: sacct must run from the folder in site.slurm_bin" in out.stdout
        assert "ok      squeue answers: slurmctld reachable" in out.stdout


class TestLimitsFailure:
    def test_a_failing_sacctmgr_is_in_the_status_and_on_the_page(self, tmp_path: Path,
                                                                  samples: Path) -> None:
        from app.figures import stale_message

        bin_dir = tmp_path / "bin"
        fake_sacct.install(bin_dir, prints=samples / "sacct_avery.txt")
        (bin_dir / "sacctmgr").write_text("#!/bin/sh\necho 'sacctmgr: error: no slurmdbd' >&2\n"
                                          "exit 1\n")
        (bin_dir / "sacctmgr").chmod(0o755)
        path = write_config(tmp_path, bin_dir)
        path.write_text(path.read_text().replace("limits = { cpus = 430, gpus = 39, memory_gb = 3359 }",
                                                 'limits = "auto"'))
        config = load_config(path)
        report = collect(config, time.time(), plots=False)
        assert report.limits is not None
        assert "no slurmdbd" in report.limits.warning
        step = read_status(config.site.data_dir)["steps"]["limits"]
        assert step["ok"] is False
        assert "sacctmgr exited with status 1" in step["error"]
        shown = stale_message("avery", None, failures(read_status(config.site.data_dir)), "UTC", 10)
        assert shown is not None
        assert "The last read of the QoS limits from sacctmgr" in shown
        assert "no slurmdbd" in shown
        # sacctmgr answers again: the failure clears.
        (bin_dir / "sacctmgr").write_text(f"#!/bin/sh\ngrep -v '^#' {samples / 'sacctmgr_qos.txt'}\n")
        collect(config, time.time(), plots=False)
        assert read_status(config.site.data_dir)["steps"]["limits"]["ok"] is True
        assert failures(read_status(config.site.data_dir)) == []
