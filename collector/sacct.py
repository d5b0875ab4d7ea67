"""The sacct boundary: the exact argument list (pure) and the one subprocess call.

Why each flag (see sacct(1)):
  --allusers      every user of the QoS, not only the caller's jobs.
  --allocations   one line per job allocation; steps (.batch, .extern, .0) would
                  count the same CPUs again.
  --duplicates    a requeued job's earlier runs are shown too, so the time they
                  held resources is counted; without it only the last run shows.
  --parsable2     '|'-separated with no trailing '|', one header line.
  --noconvert     memory as plain MiB numbers, never rounded to G/T.
  --starttime/--endtime
                  with no --state, sacct selects every job that was eligible or
                  running at any time in the window, which is what binning needs,
                  including carry-in jobs that started before the window.
  --qos           all requested QoS in one query; rows are split by the QOS column.
  --clusters      (-M) the cluster asked, when the configuration names clusters;
                  without it sacct answers for the cluster of the local slurm.conf.
  --jobs          (-j) only for the incremental cycle's second question: the jobs
                  that were open at the last cycle but fell outside the time query.
  --format        exactly the fields `parse` needs, in a fixed order (the parser
                  still reads the header, so the order is not relied on).
Never -T/--truncate: it clips Start/End to the window and breaks elapsed times.

The child runs with TZ=UTC and SLURM_TIME_FORMAT=standard: sacct prints local
times without an offset, and UTC has no daylight-saving hour that repeats, so
every printed time parses to exactly one instant; a user's own
SLURM_TIME_FORMAT (e.g. "relative") would otherwise change the output format.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

# The fields binning needs. The same list is required of a saved --sacct-file.
FIELDS: tuple[str, ...] = (
    "JobIDRaw", "JobID", "User", "QOS", "State", "Submit", "Start", "End",
    "ElapsedRaw", "NNodes", "NCPUS", "ReqMem", "ReqTRES", "AllocTRES",
)

SACCT_TIME_ZONE = "UTC"


class SacctError(Exception):
    """sacct could not be run, failed, timed out or printed nothing usable."""

    def __init__(self, message: str, command: Sequence[str], stderr: str = "") -> None:
        self.command = list(command)
        self.stderr = stderr
        text = f"{message}; command: {shlex.join(self.command)}"
        if stderr.strip():
            text += f"; {_tool(self.command)} said: {_first_lines(stderr)}"
        super().__init__(text)


def _tool(args: Sequence[str]) -> str:
    """The command's name for messages: sacct, or sacctmgr for the limits."""
    return Path(args[0]).name if args else "sacct"


def _first_lines(text: str, n: int = 5) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    more = f" (+{len(lines) - n} more lines)" if len(lines) > n else ""
    return " | ".join(lines[:n]) + more


def _utc_text(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def sacct_executable(slurm_bin: Path | None) -> str:
    """The sacct to run: inside `slurm_bin` when configured, else found on PATH."""
    return str(slurm_bin / "sacct") if slurm_bin else "sacct"


def build_sacct_args(sacct: str, qos_names: Sequence[str], start: int, end: int,
                     cluster: str = "", job_ids: Sequence[int] = ()) -> list[str]:
    """The argument list for one query of the jobs active in [start, end] (epoch s),
    on one cluster ("" = the local one), optionally only the given JobIDRaw."""
    if not qos_names:
        raise ValueError("build_sacct_args needs at least one QoS name")
    if end < start:
        raise ValueError(f"window end {end!r} is before its start {start!r}")
    extra = []
    if cluster:
        extra.append(f"--clusters={cluster}")
    if len(job_ids):
        extra.append(f"--jobs={','.join(str(int(j)) for j in job_ids)}")
    return [
        sacct,
        "--allusers",
        "--allocations",
        "--duplicates",
        "--parsable2",
        "--noconvert",
        f"--starttime={_utc_text(start)}",
        f"--endtime={_utc_text(end)}",
        f"--qos={','.join(qos_names)}",
        f"--format={','.join(FIELDS)}",
        *extra,
    ]


def sacct_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: the caller's, with the time format pinned."""
    env = dict(base)
    env["TZ"] = SACCT_TIME_ZONE
    env["SLURM_TIME_FORMAT"] = "standard"
    return env


Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def run_sacct(args: Sequence[str], timeout: float, runner: Runner = subprocess.run,
              environ: Mapping[str, str] | None = None) -> bytes:
    """Run sacct (or sacctmgr: the same environment and failures) and return its
    standard output; raise `SacctError` on any failure, naming the command."""
    env = sacct_environment(os.environ if environ is None else environ)
    tool = _tool(args)
    try:
        proc = runner(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      env=env, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SacctError(
            f"{args[0]} not found (set site.slurm_bin to the folder holding {tool}, or fix PATH)",
            args,
        ) from None
    except PermissionError as err:
        raise SacctError(f"cannot execute {args[0]}: {err.strerror}", args) from err
    except subprocess.TimeoutExpired as err:
        stderr = (err.stderr or b"").decode("utf-8", "replace")
        raise SacctError(
            f"{tool} did not answer within {timeout:g} s "
            "(raise collect.sacct_timeout_seconds, or ask why slurmdbd is slow)",
            args, stderr,
        ) from err
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SacctError(f"{tool} exited with status {proc.returncode}", args, stderr)
    if not proc.stdout.strip():
        raise SacctError(f"{tool} printed nothing, not even its header line", args, stderr)
    return proc.stdout
