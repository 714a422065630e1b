"""Snakemake adapter for ``evaluate_intra`` / ``evaluate_inter``: see neurobolt.evaluate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

import torch

from neurobolt.evaluate import run_evaluate
from neurobolt.logs import configure

configure(snakemake.log[0])
# One torch thread per core the rule was given: oversubscribed cores slow training ~40x.
torch.set_num_threads(snakemake.threads)
run_evaluate(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.cfg)
