"""Snakemake adapter for rules validate and validate_first: see neurobolt.jobs.validate."""

from _helpers import run_job

# validate_first has no params (so that it never reruns): it checks the whole config.
run_job(snakemake, "validate", params=dict(snakemake.params.items()) or {"cfg": snakemake.config})
