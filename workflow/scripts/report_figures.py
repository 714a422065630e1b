"""Snakemake adapter for rule report_figures: see neurobolt.jobs.report_figures."""

from _helpers import run_job

run_job(snakemake, "report_figures")
