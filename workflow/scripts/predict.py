"""Snakemake adapter for the ``predict`` rule: see neurobolt.predict.run_predict."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

import torch

from neurobolt.logs import configure
from neurobolt.predict import run_predict

configure(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
run_predict(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    dict(snakemake.params.items()),
)
