"""The floor for `librarian collect`: the least work that reads the same file and bins it.

Reads the sacct file with Arrow's CSV reader (the fastest reader in the
environment), skips step lines, parses Start/End as UTC, and bins CPUs, GPUs
(untyped gres/gpu only), memory and job counts per user with plain numpy:
no validation, no time zone, no TRES rules, no JSON. Run as its own process
by bench/collect_bench.py, so both whole-process times compare like for like.

    python bench/floor.py FILE NOW_EPOCH
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

BIN, N_BINS = 3600, 720


def main(path: str, now: int) -> None:
    table = pcsv.read_csv(
        path, parse_options=pcsv.ParseOptions(delimiter="|", quote_char=False),
        convert_options=pcsv.ConvertOptions(
            include_columns=["JobID", "User", "Start", "End", "NCPUS", "AllocTRES"],
            column_types={"JobID": pa.string(), "Start": pa.string(), "End": pa.string(),
                          "NCPUS": pa.string()}))
    table = table.filter(pc.invert(pc.match_substring(table["JobID"], ".")))
    fmt = "%Y-%m-%dT%H:%M:%S"
    start = pc.strptime(table["Start"], format=fmt, unit="s", error_is_null=True)
    end = pc.strptime(table["End"], format=fmt, unit="s", error_is_null=True)
    s = np.asarray(start.cast(pa.int64()).fill_null(-1))
    e = np.asarray(end.cast(pa.int64()).fill_null(now))
    cpus = np.asarray(pc.cast(table["NCPUS"], pa.float64()))
    tres = pc.dictionary_encode(table["AllocTRES"]).combine_chunks()
    values = [dict(kv.split("=", 1) for kv in t.split(",")) if t else {} for t in tres.dictionary.to_pylist()]
    idx = np.asarray(tres.indices)
    gpus = np.array([float(v.get("gres/gpu", 0)) for v in values])[idx]
    mem = np.array([float(v.get("mem", "0M")[:-1]) / 1024 for v in values])[idx]
    enc = pc.dictionary_encode(table["User"]).combine_chunks()
    user = np.asarray(enc.indices).astype(np.int64)
    n_users = len(enc.dictionary)

    end_edge = -(-now // BIN) * BIN
    t0 = end_edge - N_BINS * BIN
    ok = (s >= 0)
    s, e = np.maximum(s, t0), np.minimum(e, now)
    ok &= e > s
    s, e, user = s[ok], e[ok], user[ok]
    i0, i1 = (s - t0) // BIN, (e - 1 - t0) // BIN
    out = []
    for w in (cpus[ok], gpus[ok], mem[ok], np.ones(ok.sum())):
        first = np.bincount(user * N_BINS + i0, weights=w * (np.minimum(e, t0 + (i0 + 1) * BIN) - s),
                            minlength=n_users * N_BINS)
        m = i1 > i0
        last = np.bincount(user[m] * N_BINS + i1[m], weights=w[m] * (e[m] - (t0 + i1[m] * BIN)),
                           minlength=n_users * N_BINS)
        inner = i1 > i0 + 1
        d = (np.bincount(user[inner] * (N_BINS + 1) + i0[inner] + 1, weights=w[inner], minlength=n_users * (N_BINS + 1))
             - np.bincount(user[inner] * (N_BINS + 1) + i1[inner], weights=w[inner], minlength=n_users * (N_BINS + 1)))
        full = np.cumsum(d.reshape(n_users, N_BINS + 1), axis=1)[:, :N_BINS] * BIN
        out.append((first + last).reshape(n_users, N_BINS) + full)
    total = sum(float(o.sum()) for o in out)
    print(f"floor: {n_users} users, {int(ok.sum())} jobs binned, checksum {total:.6g}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
