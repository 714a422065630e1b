"""Snakemake adapter for rules validate and validate_first: see neurobolt.jobs.validate."""

from types import SimpleNamespace

from _helpers import run_job

# validate_first has no params (so that it never reruns): it checks the whole config.
job = {key: getattr(snakemake, key) for key in ("input", "output", "log", "threads")}
params = dict(snakemake.params.items()) or {"cfg": snakemake.config}
run_job(SimpleNamespace(**job, params=params), "validate")
