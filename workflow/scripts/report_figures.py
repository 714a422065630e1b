"""Snakemake adapter for ``report_figures``: see neurobolt.report_figures.run_report_figures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.report_figures import run_report_figures

configure(snakemake.log[0])
run_report_figures(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    dict(snakemake.params.items()),
)
