"""The observables: what is binned, charted, tabled and limited, in one table.

Every stage reads this table: the binning (which job column is summed), the
limits (the configuration key and how sacctmgr's GrpTRES names it), the
snapshot (its keys, as the seed named them), the charts and the PNG plots
(titles and units), the tables (column headers), and the static page (the
export ships these rows in its manifest). A new observable is one row here
plus its computation: the job-table column it sums, and where it has a QoS
limit, the function that reads that limit from a TRES string.

Three kinds of rows: what running jobs hold (counted from Start to End: the
four charts); what ended jobs used of it (`used_of` names the held row it is
drawn inside: also from Start to End, each job's CPU time spread evenly over
its run and its peak memory held over the whole run, zero until the job has
ended and its steps were read); and what waiting jobs ask for (`queued_of`
names the running row it is drawn with: counted from Eligible to Start,
collector/binning.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from collector.slurm_formats import parse_size_mib, parse_tres, tres_gpus


def _tres_cpus(text: str) -> float | None:
    tres = parse_tres(text)
    return float(tres["cpu"]) if "cpu" in tres else None


def _tres_mem_gib(text: str) -> float | None:
    """sacctmgr prints memory with a unit (M when none); limits are in GiB."""
    tres = parse_tres(text)
    return parse_size_mib(tres["mem"]) / 1024.0 if "mem" in tres else None


@dataclass(frozen=True)
class Observable:
    key: str                 # the snapshot's key ("NCPUS": the seed's names, kept)
    column: str | None       # the JobTable column summed per job; None counts 1 per job
    title: str               # chart title and PNG axis label
    unit: str                # the chart's y axis
    current_label: str       # header of the current-usage table
    total_label: str         # header of the total-usage table (resource-hours)
    limit_key: str | None = None   # the [[qos]] limits key; None: never limited
    limit_from_tres: Callable[[str], float | None] | None = None  # from sacctmgr GrpTRES
    queued_of: str | None = None   # a queued row: the key of the running row it belongs to
    used_of: str | None = None     # a used row: the key of the held row it is drawn inside

    def as_dict(self) -> dict[str, object]:
        """What the static page needs of the row (no functions)."""
        return {"key": self.key, "title": self.title, "unit": self.unit,
                "current_label": self.current_label, "total_label": self.total_label,
                "limited": self.limit_key is not None, "queued_of": self.queued_of,
                "used_of": self.used_of}


OBSERVABLES: tuple[Observable, ...] = (
    Observable("NCPUS", "cpus", "# of CPUs", "CPUs", "CPUs", "CPU-h", "cpus", _tres_cpus),
    Observable("NGPUS", "gpus", "# of GPUs", "GPUs", "GPUs", "GPU-h", "gpus", tres_gpus),
    Observable("MEMORY", "mem_gib", "Memory (GB)", "GB", "Mem GB", "Mem GB-h", "memory_gb",
               _tres_mem_gib),
    Observable("NJOBS", None, "# of Jobs", "jobs", "Jobs", "Job-h"),
    # What ended jobs used of what they held (TotalCPU / ElapsedRaw; the peak MaxRSS).
    Observable("USED_NCPUS", "used_cpus", "# of CPUs used", "CPUs", "CPUs used", "CPU-h used",
               used_of="NCPUS"),
    Observable("USED_MEMORY", "used_mem_gib", "Peak memory used (GB)", "GB", "Mem GB used",
               "Mem GB-h used", used_of="MEMORY"),
    # What waiting jobs ask for (ReqCPUS, ReqTRES), per array task still pending.
    Observable("QUEUED_NCPUS", "req_cpus", "# of CPUs queued", "CPUs", "Queued CPUs",
               "Queued CPU-h", queued_of="NCPUS"),
    Observable("QUEUED_NGPUS", "req_gpus", "# of GPUs queued", "GPUs", "Queued GPUs",
               "Queued GPU-h", queued_of="NGPUS"),
    Observable("QUEUED_MEMORY", "req_mem_gib", "Memory queued (GB)", "GB", "Queued Mem GB",
               "Queued Mem GB-h", queued_of="MEMORY"),
    Observable("QUEUED_NJOBS", "tasks", "# of Jobs queued", "jobs", "Queued jobs",
               "Queued job-h", queued_of="NJOBS"),
)
KEYS: tuple[str, ...] = tuple(o.key for o in OBSERVABLES)
RUNNING: tuple[Observable, ...] = tuple(o for o in OBSERVABLES if o.queued_of is None)
QUEUED: tuple[Observable, ...] = tuple(o for o in OBSERVABLES if o.queued_of is not None)
USED: tuple[Observable, ...] = tuple(o for o in OBSERVABLES if o.used_of is not None)
HELD: tuple[Observable, ...] = tuple(o for o in RUNNING if o.used_of is None)   # one chart each
CHART_KEYS: tuple[str, ...] = tuple(o.key for o in HELD)
LIMITED: tuple[Observable, ...] = tuple(o for o in OBSERVABLES if o.limit_key)
LIMIT_KEYS: tuple[str, ...] = tuple(o.limit_key for o in LIMITED if o.limit_key)
_BY_KEY = {o.key: o for o in OBSERVABLES}
_QUEUED_OF = {o.queued_of: o.key for o in QUEUED}
_USED_OF = {o.used_of: o.key for o in USED}


def queued_key(key: str) -> str | None:
    """The queued row drawn with a running row (None: it has none)."""
    return _QUEUED_OF.get(key)


def used_key(key: str) -> str | None:
    """The used row drawn inside a held row (None: it has none)."""
    return _USED_OF.get(key)


def observable(key: str) -> Observable:
    """The row of one observable; KeyError names the unknown key."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no observable {key!r} (known: {', '.join(KEYS)})") from None


class Limits:
    """A QoS's group limits by limit key (LIMIT_KEYS); None where there is none."""

    __slots__ = ("_values",)

    def __init__(self, **values: float | None) -> None:
        unknown = sorted(set(values) - set(LIMIT_KEYS))
        if unknown:
            raise TypeError(f"no limit named {', '.join(unknown)} (known: {', '.join(LIMIT_KEYS)})")
        self._values = tuple((k, None if values.get(k) is None else float(values[k]))  # type: ignore[arg-type]
                             for k in LIMIT_KEYS)

    def get(self, key: str) -> float | None:
        for k, v in self._values:
            if k == key:
                return v
        raise KeyError(f"no limit named {key!r} (known: {', '.join(LIMIT_KEYS)})")

    def as_dict(self) -> dict[str, float | None]:
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and self._values == other._values

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        set_ = ", ".join(f"{k}={v:g}" for k, v in self._values if v is not None)
        return f"Limits({set_})"

    def thresholds(self) -> dict[str, float | None]:
        """Per charted observable key, the limit line of a chart (None: no line)."""
        return {o.key: self.get(o.limit_key) if o.limit_key else None for o in HELD}


# Binning stacks the running rows' sums, then the queued rows': keep that order.
assert OBSERVABLES == RUNNING + QUEUED, "running observables come before queued ones"
