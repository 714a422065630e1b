"""Snakemake adapter for rule dataset_description: see neurobolt.jobs.dataset_description."""

from _helpers import run_job

run_job(snakemake, "dataset_description")
