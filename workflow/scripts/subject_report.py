"""Snakemake adapter for the ``subject_report`` rule: see neurobolt.report.run_subject_report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.report import run_subject_report

configure(snakemake.log[0])
run_subject_report(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    dict(snakemake.params.items()),
)
