"""Snakemake adapter for rule clean_eeg: see neurobolt.jobs.clean_eeg."""

from _helpers import run_job

run_job(snakemake, "clean_eeg")
