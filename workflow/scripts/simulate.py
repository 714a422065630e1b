"""Snakemake adapter for rules simulate and simulate_<label>: see neurobolt.jobs.simulate."""

from _helpers import run_job

run_job(snakemake, "simulate")
