"""Snakemake adapter for rules runs_table and runs_table_<label>: see neurobolt.jobs.runs_table."""

from _helpers import run_job

run_job(snakemake, "runs_table")
