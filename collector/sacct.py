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

The command runs through collector/slurm.py (environment, time-out, errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

# The fields binning needs: a saved --sacct-file must have these.
REQUIRED_FIELDS: tuple[str, ...] = (
    "JobIDRaw", "JobID", "User", "QOS", "State", "Submit", "Start", "End",
    "ElapsedRaw", "NNodes", "NCPUS", "ReqMem", "ReqTRES", "AllocTRES",
)
# What the queue needs as well (a wait counts from Eligible; ReqCPUS is what
# a job asks; Reason why it waits; TimelimitRaw when a running job's
# resources return at the latest). Asked of sacct always; a saved file
# without them (the seed's captures) reads as: eligible at Submit, asking
# what it was allocated, no reason, no time limit.
QUEUE_FIELDS: tuple[str, ...] = ("Eligible", "ReqCPUS", "Reason", "TimelimitRaw")
# What the page may group by (Account, and Partition: the one a job started
# in, the first it lists while pending). A saved file without them groups
# every job under "" (not known).
GROUP_FIELDS: tuple[str, ...] = ("Account", "Partition")
FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, *QUEUE_FIELDS, *GROUP_FIELDS)
# What jobs used (collector/efficiency.py): on step lines (MaxRSS, TRES usage),
# TotalCPU on the allocation line too. Not asked by the --allocations query
# (steps are asked of the jobs that ended, by id); read from a saved file
# that has them, with its step lines.
USAGE_FIELDS: tuple[str, ...] = ("TotalCPU", "MaxRSS", "TRESUsageInMax", "TRESUsageInAve")
READ_FIELDS: tuple[str, ...] = (*FIELDS, *USAGE_FIELDS)


def _utc_text(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def qos_chunks(names: Sequence[str], per_query: int) -> list[list[str]]:
    """The QoS names in runs of at most `per_query`, in order: one query per
    run. A job has one QoS, so the runs' answers are disjoint and together
    the one answer (tests/test_incremental.py proves it on the cycles)."""
    if per_query < 1:
        raise ValueError(f"per_query must be at least 1, got {per_query!r}")
    return [list(names[i:i + per_query]) for i in range(0, len(names), per_query)]


def build_sacct_args(sacct: str, qos_names: Sequence[str], start: int, end: int,
                     cluster: str = "", job_ids: Sequence[int] | np.ndarray = ()) -> list[str]:
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


# The usage query: what the steps of jobs that ended recorded, asked by id once
# per job (not --allocations: MaxRSS and the TRES usage live on step lines).
# Submit tells a requeued job's records (one JobIDRaw) apart; each record's
# steps follow its allocation line.
USAGE_QUERY_FIELDS: tuple[str, ...] = ("JobIDRaw", "JobID", "Submit", "ElapsedRaw", *USAGE_FIELDS)


def build_usage_args(sacct: str, job_ids: Sequence[int] | np.ndarray = (), cluster: str = "",
                     qos_names: Sequence[str] = (), start: int | None = None,
                     end: int | None = None) -> list[str]:
    """The argument list asking the allocation and step lines of some jobs:
    by id (with --jobs, sacct's default start time is the epoch: no window
    needed), or, for a backfill, of every job of the QoS active in [start, end]."""
    extra = [f"--clusters={cluster}"] if cluster else []
    if len(job_ids):
        which = [f"--jobs={','.join(str(int(j)) for j in job_ids)}"]
    elif qos_names and start is not None and end is not None:
        which = [f"--starttime={_utc_text(start)}", f"--endtime={_utc_text(end)}",
                 f"--qos={','.join(qos_names)}"]
    else:
        raise ValueError("build_usage_args needs job ids, or QoS names and a time span")
    return [sacct, "--allusers", "--duplicates", "--parsable2", "--noconvert", *which,
            f"--format={','.join(USAGE_QUERY_FIELDS)}", *extra]
