"""Every Slurm command Librarian runs, through one runner with one error.

sacct and sacctmgr (the collector), squeue, scontrol and scancel (the
watchdog, `doctor`) all go through `run_slurm`: the same environment, the
same time-out handling, and `SlurmError` naming the command, what it said on
standard error and the time-out it had. `slurm_tool` is the one place that
finds a binary: inside `site.slurm_bin` when configured, else on PATH.

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
from pathlib import Path

SLURM_TIME_ZONE = "UTC"
TOOLS = ("sacct", "sacctmgr", "squeue", "scontrol", "scancel", "scrontab")

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


class SlurmError(Exception):
    """A Slurm command could not be run, failed, timed out or printed nothing usable."""

    def __init__(self, message: str, command: Sequence[str], stderr: str = "",
                 timeout: float | None = None) -> None:
        self.command = list(command)
        self.stderr = stderr
        self.timeout = timeout
        self.tool = tool_name(self.command)
        text = f"{message}; command: {shlex.join(self.command)}"
        if stderr.strip():
            text += f"; {self.tool} said: {_first_lines(stderr)}"
        super().__init__(text)


def tool_name(args: Sequence[str]) -> str:
    return Path(args[0]).name if args else "slurm"


def _first_lines(text: str, n: int = 5) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    more = f" (+{len(lines) - n} more lines)" if len(lines) > n else ""
    return " | ".join(lines[:n]) + more


def slurm_tool(slurm_bin: Path | None, name: str) -> str:
    """The command to run: inside `slurm_bin` when configured, else found on PATH."""
    if name not in TOOLS:
        raise ValueError(f"not a Slurm command Librarian runs: {name!r}")
    return str(slurm_bin / name) if slurm_bin else name


def slurm_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: the caller's, with the time format pinned."""
    env = dict(base)
    env["TZ"] = SLURM_TIME_ZONE
    env["SLURM_TIME_FORMAT"] = "standard"
    return env


def run_slurm(args: Sequence[str], timeout: float, runner: Runner = subprocess.run,
              environ: Mapping[str, str] | None = None, needs_output: bool = False,
              timeout_key: str = "collect.sacct_timeout_seconds") -> bytes:
    """Run one Slurm command and return its standard output; `SlurmError` on any
    failure. `needs_output`: empty output is a failure too (sacct and sacctmgr
    always print their header line). `timeout_key` is the setting a time-out
    message names."""
    env = slurm_environment(os.environ if environ is None else environ)
    tool = tool_name(args)
    try:
        proc = runner(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      env=env, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SlurmError(
            f"{args[0]} not found (set site.slurm_bin to the folder holding {tool}, or fix PATH)",
            args) from None
    except PermissionError as err:
        raise SlurmError(f"cannot execute {args[0]}: {err.strerror} (set site.slurm_bin to "
                         f"the folder holding {tool}, or fix PATH)", args) from err
    except subprocess.TimeoutExpired as err:
        stderr = (err.stderr or b"").decode("utf-8", "replace")
        raise SlurmError(
            f"{tool} did not answer within {timeout:g} s "
            f"(raise {timeout_key}, or ask why {_daemon(tool)} is slow)",
            args, stderr, timeout) from err
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SlurmError(f"{tool} exited with status {proc.returncode}", args, stderr, timeout)
    if needs_output and not proc.stdout.strip():
        raise SlurmError(f"{tool} printed nothing, not even its header line", args, stderr,
                         timeout)
    return proc.stdout


def _daemon(tool: str) -> str:
    return "slurmdbd" if tool in ("sacct", "sacctmgr") else "slurmctld"
