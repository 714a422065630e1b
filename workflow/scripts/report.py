"""Snakemake adapter for the ``report`` rule: see neurobolt.report.run_report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.report import run_report

configure(snakemake.log[0])
run_report(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    dict(snakemake.params.items()),
)
