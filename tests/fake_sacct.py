"""Fake `sacct` executables for the CLI tests: a script on PATH, the only mock.

Each writes its arguments and the TZ / SLURM_TIME_FORMAT it was given to
`<dir>/sacct.args` (and appends them to `<dir>/sacct.calls`, one call per
paragraph), then behaves as told: print a file, fail, or hang.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def install(folder: Path, *, prints: Path | None = None, exit_code: int = 0,
            stderr: str = "", sleep: float = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "sacct"
    lines = [
        "#!/bin/sh",
        f'printf "%s\\n" "$@" > {shlex.quote(str(folder / "sacct.args"))}',
        f'{{ printf "%s\\n" "$@"; echo; }} >> {shlex.quote(str(folder / "sacct.calls"))}',
        f'echo "TZ=$TZ SLURM_TIME_FORMAT=$SLURM_TIME_FORMAT" > {shlex.quote(str(folder / "sacct.env"))}',
    ]
    if sleep:
        lines.append(f"sleep {sleep}")
    if stderr:
        lines.append(f"echo {shlex.quote(stderr)} >&2")
    if prints is not None:
        lines.append(f"grep -v '^#' {shlex.quote(str(prints))}")
    lines.append(f"exit {exit_code}")
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    if not (folder / "squeue").exists():
        install_squeue(folder)   # a site with sacct has squeue: an empty queue unless told
    return script


def install_squeue(folder: Path, *, prints: str = "", exit_code: int = 0, stderr: str = "",
                   sleep: float = 0) -> Path:
    """A fake `squeue` that records its arguments in `<dir>/squeue.args` and
    prints `prints` (the text itself), fails or hangs."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "squeue"
    (folder / "squeue.out").write_text(prints)
    lines = ["#!/bin/sh", f'printf "%s\\n" "$@" > {shlex.quote(str(folder / "squeue.args"))}']
    if sleep:
        lines.append(f"sleep {sleep}")
    if stderr:
        lines.append(f"echo {shlex.quote(stderr)} >&2")
    lines.append(f"cat {shlex.quote(str(folder / 'squeue.out'))}")
    lines.append(f"exit {exit_code}")
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


def recorded_args(folder: Path) -> list[str]:
    """The last call's arguments."""
    return (folder / "sacct.args").read_text().splitlines()


def recorded_calls(folder: Path) -> list[list[str]]:
    """Every call's arguments, in order."""
    path = folder / "sacct.calls"
    if not path.exists():
        return []
    return [p.splitlines() for p in path.read_text().split("\n\n") if p.strip()]


def path_with(folder: Path) -> str:
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
