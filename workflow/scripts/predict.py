"""Snakemake adapter for rule ``predict``: see neurobolt.jobs.predict."""

from _helpers import run_job

run_job(snakemake, "predict", limit_threads=True)
