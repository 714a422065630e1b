"""Snakemake adapter for the ``runs_table`` rule: see neurobolt.bids.run_runs_table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.bids import run_runs_table
from neurobolt.logs import configure

configure(snakemake.log[0])
run_runs_table(snakemake.input, dict(snakemake.output.items()), snakemake.params.cfg)
