"""Snakemake adapter for ``evaluate_intra`` / ``evaluate_inter``: see neurobolt.evaluate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.evaluate import run_evaluate
from neurobolt.logs import configure
from neurobolt.train import limit_threads

configure(snakemake.log[0])
# One thread per core the rule was given (torch, BLAS): oversubscribed cores slow training.
limit_threads(snakemake.threads)
params = dict(snakemake.params.cfg)
if "scans" in snakemake.params.keys():  # each store's scan key (cross-dataset analyses)
    params["scans"] = list(snakemake.params.scans)
run_evaluate(dict(snakemake.input.items()), dict(snakemake.output.items()), params)
