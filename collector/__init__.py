"""Librarian's collector: Slurm accounting -> per-QoS usage snapshots."""

import os

# numpy asks the kernel for transparent huge pages on every large array. On a
# host with THP `defrag=madvise` (Debian's default) each such allocation may
# wait for memory compaction, and a collect allocates hundreds of short-lived
# arrays of a million rows: measured here, that cost 0.6 s of system time per
# collect and most of its run-to-run spread (README, "Benchmarks"). Off unless
# the site says otherwise; it must be set before numpy is first imported.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

__version__ = "0.2.0"
