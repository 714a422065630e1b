"""Snakemake adapter for rule report: see neurobolt.jobs.report."""

from _helpers import run_job

run_job(snakemake, "report")
