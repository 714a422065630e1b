"""Snakemake adapter for the ``validate`` rule: see neurobolt.validate.run_validate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from neurobolt.logs import configure
from neurobolt.validate import ValidationError, run_validate

configure(snakemake.log[0])
try:
    run_validate(snakemake.input, dict(snakemake.output.items()), snakemake.params.cfg)
except ValidationError:
    sys.exit(1)  # the table of problems is in the log (and on stderr)
