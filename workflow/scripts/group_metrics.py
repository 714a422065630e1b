"""Snakemake adapter for ``group_metrics``: see neurobolt.evaluate.run_group_metrics."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.evaluate import run_group_metrics
from neurobolt.logs import configure

configure(snakemake.log[0])
run_group_metrics(
    dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.cfg
)
