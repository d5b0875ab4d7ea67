"""Librarian's collector: Slurm accounting -> per-QoS usage snapshots."""

__version__ = "0.2.0"
