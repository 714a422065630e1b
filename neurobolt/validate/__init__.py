"""One validation pass over the inputs before any heavy work: every problem, as one table.

:func:`validate_dataset` checks the configuration and every selected run of a
BIDS EEG-fMRI dataset and returns a :class:`Report` listing **all** the
problems found (run, file, problem, how to fix), instead of stopping at the
first one. It reads headers, sidecars, marker tables and NIfTI headers only
(plus the small brain mask and the first BOLD volume), never a whole
recording, so it takes seconds. It reuses the checks of the stages
themselves (:mod:`neurobolt.eeg.clean`, :mod:`neurobolt.eeg.markers`,
:mod:`neurobolt.fmri.signals`, :mod:`neurobolt.store`), so a dataset that
passes here is not refused later for a reason that could have been seen now.

Errors stop the workflow (:mod:`neurobolt.jobs.validate` writes nothing under its final
name); warnings (e.g. an EEG recording without a BOLD run, which is skipped)
are listed and the work goes on.
"""

from .configuration import (
    CONFIG_PATHS,
    MIN_GAP_S,
    SCHEMA,
    check_config,
    check_config_paths,
    check_cross_fields,
    check_gap,
    check_inter_split,
    resolve_sections,
)
from .dataset import validate_dataset, validate_datasets
from .outputs import check_outputs, check_torch_file
from .report import CONFIG, DATASET, OUTPUTS, Finding, Report, ValidationError
from .runs import check_bold, check_eeg, check_entities, check_fmriprep

__all__ = [
    "CONFIG",
    "CONFIG_PATHS",
    "DATASET",
    "MIN_GAP_S",
    "OUTPUTS",
    "SCHEMA",
    "Finding",
    "Report",
    "ValidationError",
    "check_bold",
    "check_config",
    "check_config_paths",
    "check_cross_fields",
    "check_eeg",
    "check_entities",
    "check_fmriprep",
    "check_gap",
    "check_inter_split",
    "check_outputs",
    "check_torch_file",
    "resolve_sections",
    "validate_dataset",
    "validate_datasets",
]
