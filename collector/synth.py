"""A synthetic but realistic sacct history, for the demo and the benchmarks.

What it makes, as `sacct -a -X -D -P --noconvert` (plus optional step lines)
would print it, times local to `tz`:
- heavy-tailed users (Zipf weights: a few users submit most jobs), each
  working in a few bursty campaigns rather than uniformly;
- lognormal queue waits and run times (median about an hour, some days long);
- CPU counts, memory per CPU, multi-node jobs, GPU jobs with typed GPUs
  (gres/gpu=N next to gres/gpu:a100=N, as Slurm lists them; a few typed only);
- job arrays (JobID 123_4 with a distinct JobIDRaw), pending jobs (Start
  Unknown), running jobs (End Unknown), jobs cancelled before they started,
  every terminal state (including 'CANCELLED by N'), carry-in jobs that
  started before the window, a few old-style ReqMem values ('4000Mc');
- optionally .batch/.extern step lines (empty User) for some of the jobs,
  and with `usage` what they used (TotalCPU, MaxRSS, TRESUsageInMax/Ave, as
  a cluster gathering job accounting records them): each user has a habit
  (how much of the CPUs and memory they ask for they use), and each job
  varies around it; the steps of running jobs carry no figures yet.
Generation is vectorised with numpy; the same seed gives the same bytes.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collector.sacct import FIELDS, READ_FIELDS

_FIRST = ("ana", "ben", "chen", "dana", "eli", "fatima", "gus", "hana", "ivan", "jo", "kai",
          "lena", "mo", "nia", "omar", "pia", "quin", "raj", "sara", "tom", "uma", "vic",
          "wei", "xena", "yuki", "zoe")
_LAST = ("a", "b", "c", "d", "e", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "w")


def user_names(n: int) -> list[str]:
    """`n` distinct plausible user names (first name + initial)."""
    names = list(_FIRST) + [f"{f}{s}" for s in _LAST for f in _FIRST]
    if n > len(names):
        names += [f"user{i:04d}" for i in range(n - len(names))]
    return names[:n]


@dataclass(frozen=True)
class SynthQos:
    """One QoS: its share of the jobs, how often its jobs ask for GPUs, and
    optional group limits that a first-come-first-served queue enforces."""

    name: str
    share: float = 1.0
    gpu_fraction: float = 0.1
    cpu_limit: int | None = None
    gpu_limit: int | None = None


def mean_job_cpu_seconds() -> float:
    """The expected CPUs x run time of one job (for sizing a history to a target load)."""
    rng = np.random.default_rng(12345)
    cpus = rng.choice(_CPU_CHOICES, size=200_000, p=_CPU_P)
    dur = _durations(rng, 200_000)
    return float(np.mean(cpus * dur))


_CPU_CHOICES = np.array([1, 2, 4, 8, 16, 32, 64])
_CPU_P = np.array([0.30, 0.15, 0.20, 0.15, 0.12, 0.06, 0.02])
_STATES = np.array(["COMPLETED", "FAILED", "CANCELLED by {uid}", "TIMEOUT", "OUT_OF_MEMORY",
                    "NODE_FAIL"])
_STATE_P = np.array([0.80, 0.08, 0.06, 0.04, 0.015, 0.005])


def _durations(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.lognormal(mean=np.log(3600), sigma=1.3, size=n), 20, 7 * 86400).astype(np.int64)


def _fifo_starts(eligible: np.ndarray, dur: np.ndarray, cpus: np.ndarray, gpus: np.ndarray,
                 cpu_limit: float, gpu_limit: float) -> np.ndarray:
    """Start times under a first-come-first-served queue holding the group limits.

    A Python loop over the jobs of one QoS: fine for a demo's thousands of jobs;
    the large benchmark histories run without limits."""
    start = eligible.copy()
    running: list[tuple[int, int, int]] = []  # (end, cpus, gpus) heap
    used_c = used_g = 0
    clock = 0
    for i in np.argsort(eligible, kind="stable").tolist():
        c, g = int(min(cpus[i], cpu_limit)), int(min(gpus[i], gpu_limit))
        t = max(int(eligible[i]), clock)
        while running and (running[0][0] <= t or used_c + c > cpu_limit or used_g + g > gpu_limit):
            end, rc, rg = heapq.heappop(running)
            used_c -= rc
            used_g -= rg
            t = max(t, end)
        start[i] = t
        clock = t
        heapq.heappush(running, (t + int(dur[i]), c, g))
        used_c += c
        used_g += g
    return start


def _local_text(epoch: np.ndarray, tz: str) -> np.ndarray:
    """Epoch seconds -> 'YYYY-MM-DDTHH:MM:SS' local to tz (vectorised)."""
    import pandas as pd  # the demo and the benchmarks only, never a collect

    t = pd.to_datetime(epoch, unit="s", utc=True)
    if tz != "UTC":
        t = t.tz_convert(tz)
    naive = t.tz_localize(None).to_numpy().astype("datetime64[s]")
    return np.datetime_as_string(naive, unit="s")


def synth_sacct(now: int, days: int, n_jobs: int, *, n_users: int = 50,
                qos: Sequence[SynthQos] = (SynthQos("avery"),), tz: str = "UTC",
                seed: int = 0, steps: float = 0.0, carry_in_days: float = 7.0,
                user_prefix: str = "", first_job_id: int = 1000, usage: bool = False) -> bytes:
    """A sacct --parsable2 text of `n_jobs` job lines active in the `days` before `now`,
    plus .batch and .extern step lines for a fraction `steps` of the started jobs,
    and with `usage` the usage fields (collector.sacct.USAGE_FIELDS) after the others.
    `user_prefix` and `first_job_id` keep several histories apart (one per group)."""
    rng = np.random.default_rng(seed)
    n = n_jobs
    span_start = now - int(days * 86400) - int(carry_in_days * 86400)
    now - span_start

    users = np.array([user_prefix + u for u in user_names(n_users)], dtype=object)
    weights = 1.0 / np.arange(1, n_users + 1) ** 1.1
    user_idx = rng.choice(n_users, size=n, p=weights / weights.sum())

    # Campaigns: each user works in 3 bursts; a job's submit time falls in one.
    centers = rng.uniform(span_start, now, size=(n_users, 3))
    widths = rng.lognormal(np.log(2 * 86400), 0.7, size=(n_users, 3))
    pick = rng.integers(0, 3, size=n)
    submit = centers[user_idx, pick] + rng.normal(0, 1, size=n) * widths[user_idx, pick]
    submit = np.where((submit < span_start) | (submit > now),
                      rng.uniform(span_start, now, size=n), submit).astype(np.int64)

    wait = np.clip(rng.lognormal(np.log(120), 1.5, size=n), 0, 3 * 86400).astype(np.int64)
    start = submit + wait
    # A few jobs wait far longer (held, dependencies, a full queue): some still pend.
    stuck = rng.random(n) < 0.01
    start[stuck] += rng.integers(86400, 30 * 86400, size=int(stuck.sum()))
    dur = _durations(rng, n)

    shares = np.array([q.share for q in qos], dtype=float)
    qos_idx = rng.choice(len(qos), size=n, p=shares / shares.sum())
    qos_names = np.array([q.name for q in qos], dtype=object)
    gpu_frac = np.array([q.gpu_fraction for q in qos])[qos_idx]

    cpus = rng.choice(_CPU_CHOICES, size=n, p=_CPU_P)
    nnodes = np.where((cpus >= 32) & (rng.random(n) < 0.3), rng.integers(2, 5, size=n), 1)
    mem_per_cpu = rng.choice(np.array([1024, 2048, 4096, 8192]), size=n, p=[0.2, 0.4, 0.3, 0.1])
    mem_mib = cpus * mem_per_cpu
    gpus = np.where(rng.random(n) < gpu_frac, rng.choice([1, 2, 4, 8], size=n, p=[.5, .3, .15, .05]), 0)
    gpu_type = rng.choice(np.array(["a100", "l4", "b200"], dtype=object), size=n)
    typed_only = rng.random(n) < 0.05
    for k, q in enumerate(qos):
        if q.cpu_limit is not None or q.gpu_limit is not None:
            sel = np.flatnonzero(qos_idx == k)
            start[sel] = _fifo_starts(start[sel], dur[sel], cpus[sel], gpus[sel],
                                      q.cpu_limit or np.inf, q.gpu_limit or np.inf)
    end = start + dur

    pending = start >= now
    never_started = ~pending & (rng.random(n) < 0.01)  # cancelled while pending
    running = ~pending & ~never_started & (end > now)
    state_idx = rng.choice(len(_STATES), size=n, p=_STATE_P)
    state = _STATES[state_idx].astype(object)
    cancel = state_idx == 2
    state[cancel] = [f"CANCELLED by {u}" for u in rng.integers(0, 60000, size=int(cancel.sum()))]
    state[pending] = "PENDING"
    state[running] = "RUNNING"
    state[never_started] = "CANCELLED by 0"

    submit_t = _local_text(submit, tz).astype(object)
    start_t = _local_text(start, tz).astype(object)
    end_t = _local_text(end, tz).astype(object)
    start_t[pending] = "Unknown"
    start_t[never_started] = "None"
    end_t[pending | running] = "Unknown"
    end_t[never_started] = submit_t[never_started]
    elapsed = np.where(pending | never_started, 0, np.minimum(end, now) - start)

    gres = np.array([
        "" if g == 0 else (f"gres/gpu:{t}={g}," if o else f"gres/gpu={g},gres/gpu:{t}={g},")
        for g, t, o in zip(gpus.tolist(), gpu_type.tolist(), typed_only.tolist(), strict=True)
    ], dtype=object)
    tres = np.array([
        f"billing={c},cpu={c},{g}mem={m}M,node={nn}"
        for c, g, m, nn in zip(cpus.tolist(), gres.tolist(), mem_mib.tolist(), nnodes.tolist(),
                               strict=True)
    ], dtype=object)
    alloc = tres.copy()
    alloc[pending | never_started] = ""
    old_style = rng.random(n) < 0.02
    req_mem = np.array([f"{m}M" for m in mem_mib.tolist()], dtype=object)
    req_mem[old_style] = [f"{m}Mc" for m in mem_per_cpu[old_style].tolist()]

    # Array tasks share a base JobID; JobIDRaw stays distinct.
    job_raw = np.arange(first_job_id, first_job_id + n)
    in_array = rng.random(n) < 0.2
    job_id = job_raw.astype(str).astype(object)
    base = np.maximum(job_raw - rng.integers(0, 50, size=n), first_job_id)
    job_id[in_array] = [f"{b}_{i}" for b, i in zip(base[in_array].tolist(),
                                                   rng.integers(0, 100, size=int(in_array.sum())).tolist(), strict=True)]

    # The queue's fields (drawn last, so the allocation columns stay as they were).
    limited = np.array([q.cpu_limit is not None or q.gpu_limit is not None for q in qos])[qos_idx]
    held = pending & (rng.random(n) < 0.1)
    reason = np.full(n, "None", dtype=object)
    reason[pending] = np.where(limited[pending], "QOSGrpCpuLimit", "Priority")
    reason[held] = "JobHeldUser"
    reason[never_started] = "Priority"
    eligible_t = submit_t.copy()
    eligible_t[held] = "Unknown"
    minutes = np.ceil(dur * rng.uniform(1.0, 3.0, size=n) / 60).astype(np.int64)

    if usage:   # drawn after everything else: the other columns stay as they were
        cpu_habit = rng.beta(2.0, 1.2, size=n_users)      # most use most of their CPUs
        mem_habit = rng.beta(1.3, 2.5, size=n_users)      # and ask for more memory than they touch
        cpu_use = np.clip(cpu_habit[user_idx] * rng.lognormal(0, 0.25, size=n), 0.001, 1.0)
        mem_use = np.clip(mem_habit[user_idx] * rng.lognormal(0, 0.3, size=n), 0.005, 1.0)
        total_cpu = elapsed * cpus * cpu_use
        peak = (mem_mib * mem_use * 2**20).astype(np.int64)   # bytes, as --noconvert prints
        ended = ~pending & ~never_started & ~running
        total_t = np.array([_cpu_text(t) for t in total_cpu.tolist()], dtype=object)
        total_t[~ended] = ""
        rss_t = peak.astype(str).astype(object)
        rss_t[~ended] = ""

    # Account and partition (drawn last: the rest stays as it was). Every user
    # charges the group's account, one in four sometimes a lab account too; GPU
    # jobs run in "gpu", large-memory ones in "bigmem"; a pending job may list
    # two partitions (it counts under the first until it starts).
    lab_user = (np.arange(n_users) % 4) == 1
    base = str(qos_names[0]).split("-")[0] if len(qos_names) else "group"
    account = np.where(lab_user[user_idx] & (rng.random(n) < 0.4), f"{base}-lab", base)
    partition = np.where(gpus > 0, "gpu", np.where(mem_mib >= 262144, "bigmem", "hpg-default"))
    partition = partition.astype(object)
    listed = pending & (gpus == 0) & (rng.random(n) < 0.3)
    partition[listed] = [f"{x},hpg-milan" for x in partition[listed].tolist()]

    order = np.argsort(submit, kind="stable")
    cols = {
        "JobIDRaw": job_raw.astype(str), "JobID": job_id, "User": users[user_idx],
        "QOS": qos_names[qos_idx], "State": state, "Submit": submit_t, "Start": start_t,
        "End": end_t, "ElapsedRaw": elapsed.astype(str), "NNodes": nnodes.astype(str),
        "NCPUS": cpus.astype(str), "ReqMem": req_mem, "ReqTRES": tres, "AllocTRES": alloc,
        "Eligible": eligible_t, "ReqCPUS": cpus.astype(str), "Reason": reason,
        "TimelimitRaw": minutes.astype(str), "Account": account.astype(object),
        "Partition": partition,
    }
    fields = FIELDS
    if usage:
        fields = READ_FIELDS
        # The allocation line carries TotalCPU (its steps' sum), never MaxRSS.
        empty = np.full(n, "", dtype=object)
        cols.update({"TotalCPU": total_t, "MaxRSS": empty, "TRESUsageInMax": empty,
                     "TRESUsageInAve": empty})
        batch_usage = [f"{c}|{r}|{'' if not r else f'cpu={c},mem={r}'}|"
                       for c, r in zip(total_t[order].tolist(), rss_t[order].tolist(), strict=True)]
        small = "00:00.001|1024|cpu=00:00:00,mem=1024|"
    rows = zip(*(np.asarray(cols[f])[order].tolist() for f in fields), strict=True)
    lines = ["|".join(fields)]
    if steps:
        started = ((~pending & ~never_started) & (rng.random(n) < steps))[order].tolist()
        width = len(FIELDS)
        for k, (r, has_steps) in enumerate(zip(rows, started, strict=True)):
            lines.append("|".join(r))
            if has_steps:
                batch = _step_line(r[:width], "batch")
                extern = _step_line(r[:width], "extern")
                if usage:
                    ended_job = bool(r[width])   # TotalCPU set: it ended
                    batch += "|" + (batch_usage[k] if ended_job else "|||")
                    extern += "|" + (small if ended_job else "|||")
                lines.append(batch)
                lines.append(extern)
    else:
        lines.extend("|".join(r) for r in rows)
    return ("\n".join(lines) + "\n").encode()


def _cpu_text(seconds: float) -> str:
    """TotalCPU as sacct prints it: MM:SS.mmm under an hour, [D-]HH:MM:SS above."""
    if seconds < 3600:
        return f"{int(seconds // 60):02d}:{seconds % 60:06.3f}"
    s = int(seconds)
    days, rest = divmod(s, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _step_line(row: tuple[str, ...], step: str) -> str:
    cells = list(row)
    cells[0] = f"{row[0]}.{step}"
    cells[1] = f"{row[1]}.{step}"
    cells[2] = ""  # steps have no User
    cells[3] = ""
    cells[11] = ""
    return "|".join(cells)


def synth_squeue(history: bytes, tz: str = "UTC") -> bytes:
    """What squeue would print (collector/squeue.py's format, times in UTC) for
    the jobs still pending at the end of a synthetic history: one line per job."""
    from collector.parse import parse_sacct
    from collector.squeue import SEP

    jobs = parse_sacct(history, tz).jobs
    rows = np.flatnonzero(np.isnan(jobs.start) & np.isnan(jobs.end))
    stamp = _local_text(jobs.submit[rows].astype(np.int64), "UTC")
    lines = []
    for i, submit in zip(rows.tolist(), stamp.tolist(), strict=True):
        tres = f"cpu={jobs.req_cpus[i]:g},mem={jobs.req_mem_gib[i] * 1024:.0f}M,node=1"
        if jobs.req_gpus[i]:
            tres += f",gres/gpu={jobs.req_gpus[i]:g}"
        cells = [str(jobs.job_id[i]), jobs.users[jobs.user[i]], jobs.qos_names[jobs.qos[i]],
                 "PENDING", jobs.reasons[jobs.reason[i]] or "Priority", tres, submit]
        lines.append("".join(c + SEP for c in cells))
    return "".join(line + "\n" for line in lines).encode()
