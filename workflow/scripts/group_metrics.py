"""Snakemake adapter for rule ``group_metrics``: see neurobolt.jobs.group_metrics."""

from _helpers import run_job

run_job(snakemake, "group_metrics")
