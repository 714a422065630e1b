"""Snakemake adapter for rule ``train_intra`` / ``train_inter``: see neurobolt.jobs.train."""

from _helpers import run_job

run_job(snakemake, "train", limit_threads=True)
