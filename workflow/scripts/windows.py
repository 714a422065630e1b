"""Snakemake adapter for rule windows: see neurobolt.jobs.windows."""

from _helpers import run_job

run_job(snakemake, "windows")
