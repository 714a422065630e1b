"""Snakemake adapter for the ``validate`` rule: see neurobolt.validate.run_validate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.validate import ValidationError, run_validate

configure(snakemake.log[0])
# validate_first has no params (it must never rerun): it checks the whole config.
cfg = snakemake.params.cfg if "cfg" in snakemake.params.keys() else snakemake.config
try:
    run_validate(snakemake.input, dict(snakemake.output.items()), cfg)
except ValidationError:
    sys.exit(1)  # the table of problems is in the log (and on stderr)
