"""Snakemake adapter for the ``predict`` rule: see neurobolt.predict.run_predict."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.predict import run_predict
from neurobolt.train import limit_threads

configure(snakemake.log[0])
limit_threads(snakemake.threads)
run_predict(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    dict(snakemake.params.items()),
)
