"""Snakemake adapter for the ``windows`` rule: see neurobolt.store.run_windows."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.store import run_windows

configure(snakemake.log[0])
run_windows(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.cfg)
