"""Slurm's pending reasons in plain words, and what they say about a wait (pure).

squeue and sacct print a pending job's reason as one word (QOSGrpCpuLimit,
Priority, ...; see squeue(1), JOB REASON CODES, and Slurm's
src/common/slurm_protocol_defs.c). A group leader reads the words; the
collector reads the kind of wait: a group (QoS) limit on which resource, a
per-user limit, a hold, and so on. Each kind is a bit, so a job's store
record can keep every kind it was seen waiting on (`reasons_seen`).
An unknown reason is shown as Slurm's own word.
"""

from __future__ import annotations

import re

# The kinds of wait, one bit each (a job's `reasons_seen` ORs them).
HELD = 1                 # held by its user or an administrator
LATER = 2                # a begin time in the future
DEPENDENCY = 4           # waits for other jobs
GROUP_CPU = 8            # the QoS's group CPU limit
GROUP_GPU = 16           # the QoS's group GPU (GRES) limit
GROUP_MEM = 32           # the QoS's group memory limit
GROUP_OTHER = 64         # another group limit of the QoS (jobs, nodes, minutes, billing)
PER_USER = 128           # a per-user limit of the QoS or association
PRIORITY = 256           # other jobs go first
RESOURCES = 512          # the nodes are busy
ACCOUNT = 1024           # a limit of the account (association), not of the QoS
OTHER = 2048             # anything else

GROUP_BITS = GROUP_CPU | GROUP_GPU | GROUP_MEM | GROUP_OTHER
# A job waiting for one of these is not demand for resources: counted apart as "held".
NOT_ELIGIBLE = HELD | LATER | DEPENDENCY

# Which group-limit bit stands for which limited observable (collector/observables.py).
GROUP_BIT_OF = {"NCPUS": GROUP_CPU, "NGPUS": GROUP_GPU, "MEMORY": GROUP_MEM}

_EXACT: dict[str, tuple[int, str]] = {
    "QOSGrpCpuLimit": (GROUP_CPU, "the group is at its QoS CPU limit"),
    "QOSGrpGRES": (GROUP_GPU, "the group is at its QoS GPU limit"),
    "QOSGrpMemLimit": (GROUP_MEM, "the group is at its QoS memory limit"),
    "QOSGrpJobsLimit": (GROUP_OTHER, "the group is at its QoS limit of running jobs"),
    "QOSGrpNodeLimit": (GROUP_OTHER, "the group is at its QoS node limit"),
    "QOSGrpSubmitJobsLimit": (GROUP_OTHER, "the group is at its QoS limit of queued jobs"),
    "QOSGrpBillingMinutes": (GROUP_OTHER, "the group has used its QoS billing minutes"),
    "QOSGrpCPUMinutesLimit": (GROUP_OTHER, "the group has used its QoS CPU minutes"),
    "QOSGrpCpuMinutesLimit": (GROUP_OTHER, "the group has used its QoS CPU minutes"),
    "QOSGrpCPURunMinutesLimit": (GROUP_OTHER,
                                 "the group is at its QoS limit of running CPU minutes"),
    "QOSGrpCpuRunMinutesLimit": (GROUP_OTHER,
                                 "the group is at its QoS limit of running CPU minutes"),
    "QOSGrpWallLimit": (GROUP_OTHER, "the group has used its QoS wall-time allowance"),
    "Priority": (PRIORITY, "other jobs have priority (fair share)"),
    "Resources": (RESOURCES, "waiting for free nodes"),
    "Dependency": (DEPENDENCY, "waiting for other jobs to finish (dependency)"),
    "DependencyNeverSatisfied": (DEPENDENCY, "its dependency can never be satisfied"),
    "BeginTime": (LATER, "its start time is in the future"),
    "JobHeldUser": (HELD, "held by its user"),
    "JobHeldAdmin": (HELD, "held by an administrator"),
    "ReqNodeNotAvail": (OTHER, "the nodes it asks for are not available "
                               "(down, drained or reserved)"),
    "PartitionTimeLimit": (OTHER, "its time limit is longer than the partition allows"),
    "PartitionNodeLimit": (OTHER, "it asks for more nodes than the partition allows"),
    "PartitionDown": (OTHER, "its partition is down"),
    "PartitionInactive": (OTHER, "its partition is inactive"),
    "Reservation": (OTHER, "waiting for its reservation"),
    "Licenses": (OTHER, "waiting for licenses"),
    "BadConstraints": (OTHER, "its constraints cannot be met"),
    "launch failed requeued held": (HELD, "held after a failed launch"),
}
_RESOURCE = {"Cpu": "CPU", "CPU": "CPU", "GRES": "GPU", "Mem": "memory", "Memory": "memory",
             "Jobs": "jobs", "Job": "jobs", "Node": "node", "Submit": "queued jobs"}
_PER_USER = re.compile(r"^(QOS|Assoc)Max(\w+?)(PerUser|PerAccount)(Limit)?$")
_PER_JOB = re.compile(r"^(QOS|Assoc)Max\w*(PerJob|PerNode|Wall\w*)(Limit)?$")
_ASSOC_GRP = re.compile(r"^AssocGrp(\w+?)(Limit)?$")
_QOS_GRP = re.compile(r"^QOSGrp\w+$")


def _resource(word: str) -> str:
    for key, name in _RESOURCE.items():
        if word.startswith(key):
            return name
    return word


def classify(reason: str) -> tuple[int, str]:
    """(kind bits, words) of one pending reason; words are Slurm's own for an
    unknown reason, and empty for none."""
    reason = reason.strip().strip("()")
    if reason in ("", "None"):
        return 0, ""
    if reason in _EXACT:
        return _EXACT[reason]
    if m := _PER_USER.match(reason):
        return PER_USER, f"this user is at the per-user {_resource(m.group(2))} limit"
    if _PER_JOB.match(reason):
        return OTHER, f"it asks for more than a job may have ({reason})"
    if m := _ASSOC_GRP.match(reason):
        return ACCOUNT, f"the account is at its {_resource(m.group(1))} limit"
    if _QOS_GRP.match(reason):
        return GROUP_OTHER, f"the group is at a QoS limit ({reason})"
    return OTHER, reason


def bits(reason: str) -> int:
    return classify(reason)[0]


def words(reason: str) -> str:
    return classify(reason)[1]


def not_eligible(reason: str) -> bool:
    """A hold, a future begin time or a dependency: not waiting for resources."""
    return bool(bits(reason) & NOT_ELIGIBLE)
