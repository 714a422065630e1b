"""Snakemake adapter for ``train_transfer``: see neurobolt.transfer.run_train_transfer."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.train import limit_threads
from neurobolt.transfer import run_train_transfer

configure(snakemake.log[0])
# One thread per core the rule was given (torch, BLAS): oversubscribed cores slow training.
limit_threads(snakemake.threads)
keys = (
    "analysis",
    "roi",
    "model_name",
    "model",
    "train",
    "generalisation",
    "source_label",
    "target_label",
    "source_scans",
    "target_scans",
)
params = {key: snakemake.params[key] for key in keys}
run_train_transfer(dict(snakemake.input.items()), dict(snakemake.output.items()), params)
