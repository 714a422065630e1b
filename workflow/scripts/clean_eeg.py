"""Snakemake adapter for the ``clean_eeg`` rule: see neurobolt.eeg.clean.run_clean_eeg."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.eeg.clean import run_clean_eeg
from neurobolt.logs import configure

configure(snakemake.log[0])
run_clean_eeg(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.cfg,
    dummy_markers=snakemake.params.dummy_markers,
)
