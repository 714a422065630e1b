"""Snakemake adapter for ``train_intra`` / ``train_inter``: see neurobolt.train.run_train."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.train import limit_threads, run_train

configure(snakemake.log[0])
# One thread per core the rule was given (torch, BLAS): oversubscribed cores slow training.
limit_threads(snakemake.threads)
keys = ("analysis", "roi", "rois", "model_name", "model", "train", "scans")
params = {k: snakemake.params[k] for k in keys if k in snakemake.params.keys()}
run_train(dict(snakemake.input.items()), dict(snakemake.output.items()), params)
