"""Snakemake adapter for the ``simulate`` rule: see neurobolt.simulate.run_simulate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.simulate import run_simulate
from neurobolt.logs import configure

configure(snakemake.log[0])
run_simulate(
    snakemake.input,
    dict(snakemake.output.items()),
    snakemake.params.cfg,
    n_jobs=snakemake.threads,
)
