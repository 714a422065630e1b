"""Snakemake adapter for the ``roi_signals`` rule: see neurobolt.fmri.signals.run_roi_signals."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.fmri.signals import run_roi_signals
from neurobolt.logs import configure

configure(snakemake.log[0])
run_roi_signals(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.cfg)
