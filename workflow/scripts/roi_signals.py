"""Snakemake adapter for rule roi_signals: see neurobolt.jobs.roi_signals."""

from _helpers import run_job

run_job(snakemake, "roi_signals")
