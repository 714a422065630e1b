"""Snakemake adapter for ``dataset_description``: see neurobolt.derivatives."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.derivatives import run_dataset_description
from neurobolt.logs import configure

configure(snakemake.log[0])
run_dataset_description(
    snakemake.input, dict(snakemake.output.items()), dict(snakemake.params.items())
)
