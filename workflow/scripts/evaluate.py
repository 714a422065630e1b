"""Snakemake adapter for the ``evaluate_*`` rules: see neurobolt.jobs.evaluate."""

from _helpers import run_job

run_job(snakemake, "evaluate", limit_threads=True)
