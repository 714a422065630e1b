"""Snakemake adapter for ``train_intra`` / ``train_inter``: see neurobolt.train.run_train."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

import torch

from neurobolt.logs import configure
from neurobolt.train import run_train

configure(snakemake.log[0])
# One torch thread per core the rule was given: oversubscribed cores slow training ~40x.
torch.set_num_threads(snakemake.threads)
params = {k: snakemake.params[k] for k in ("analysis", "roi", "model_name", "model", "train")}
run_train(dict(snakemake.input.items()), dict(snakemake.output.items()), params)
