"""Snakemake adapter for rule subject_report: see neurobolt.jobs.subject_report."""

from _helpers import run_job

run_job(snakemake, "subject_report")
