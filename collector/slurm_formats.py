"""Small pure parsers for Slurm's value formats: TRES strings and memory sizes.

Each raises `ValueError` quoting the bad value. Memory is binary, as in Slurm:
K = KiB, M = MiB (the unit when none is given), G = GiB, T = TiB, P = PiB.
"""

from __future__ import annotations

import re

_UNIT_MIB = {"": 1.0, "K": 1.0 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)$")
# ReqMem before Slurm 21.08 ended in c (per CPU) or n (per node); newer versions
# print the job's total with no suffix. "0c"/"0n"/"" mean "no explicit request".
_REQMEM_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)([cn]?)$")

PER_JOB, PER_CPU, PER_NODE = "job", "cpu", "node"


def parse_size_mib(text: str) -> float:
    """A Slurm memory size ('8192M', '16G', '500', '1.5T') in MiB."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a memory size: {text!r}")
    return float(m.group(1)) * _UNIT_MIB[m.group(2)]


def parse_req_mem(text: str) -> tuple[float, str]:
    """ReqMem as (MiB, per) where per is 'job', 'cpu' or 'node'. Empty is (0, 'job')."""
    text = text.strip()
    if not text:
        return 0.0, PER_JOB
    m = _REQMEM_RE.match(text)
    if not m:
        raise ValueError(f"not a ReqMem value: {text!r}")
    per = {"": PER_JOB, "c": PER_CPU, "n": PER_NODE}[m.group(3)]
    return float(m.group(1)) * _UNIT_MIB[m.group(2)], per


def parse_tres(text: str) -> dict[str, str]:
    """A TRES string ('billing=4,cpu=4,gres/gpu=2,mem=8G,node=1') as a dict."""
    out: dict[str, str] = {}
    text = text.strip()
    if not text:
        return out
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"not a TRES string: {text!r} (bad item {item!r})")
        out[key.strip()] = value.strip()
    return out


def _count(value: str, key: str, whole: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise ValueError(f"{key} is not a number in TRES {whole!r}") from None
    if n < 0:
        raise ValueError(f"{key} is negative in TRES {whole!r}")
    return n


def tres_gpus(text: str) -> float | None:
    """GPUs in a TRES string: the untyped gres/gpu=N, else the sum of the typed
    gres/gpu:TYPE=N. Slurm lists both for the same GPUs, so never add them.
    None when the string names no GPUs at all."""
    tres = parse_tres(text)
    if "gres/gpu" in tres:
        return _count(tres["gres/gpu"], "gres/gpu", text)
    typed = [_count(v, k, text) for k, v in tres.items() if k.startswith("gres/gpu:")]
    return sum(typed) if typed else None


def tres_mem_mib(text: str) -> float | None:
    """The mem= entry of a TRES string in MiB; None when absent."""
    tres = parse_tres(text)
    if "mem" not in tres:
        return None
    try:
        return parse_size_mib(tres["mem"])
    except ValueError:
        raise ValueError(f"mem is not a memory size in TRES {text!r}") from None


# Job states in which a job still holds its allocation, so that an End of
# Unknown means "still running: count to now" (see squeue(1), JOB STATE CODES).
# Every other state with a Start has ended, whatever End says: real accounting
# databases hold finished rows with End = Unknown (a slurmctld that died before
# recording the end), and those ended at Start + ElapsedRaw.
HOLDING_STATES = frozenset({
    "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT",
    "RESIZING", "STOPPED",
})
