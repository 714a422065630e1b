"""Snakemake adapter for rules validate and validate_first: see neurobolt.jobs.validate."""

from _helpers import run_job

if not snakemake.params.keys():  # validate_first has no params (so that it never reruns):
    snakemake.params = {"cfg": snakemake.config}  # it checks the whole config
run_job(snakemake, "validate")
