"""Snakemake adapter for rule ``train_transfer``: see neurobolt.jobs.train_transfer."""

from _helpers import run_job

run_job(snakemake, "train_transfer", limit_threads=True)
