"""Job of the ``validate`` and ``validate_first`` rules: the whole table of problems, or stop."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from ..provenance import write_text
from ..validate import Report, ValidationError, validate_dataset, validate_datasets

logger = logging.getLogger("neurobolt.validate")


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> Report:
    """Check the configuration and every selected run; write the table, or stop.

    Parameters
    ----------
    inputs : mapping
        The raw files of every selected run (only so that the rule reruns when they change).
    outputs : mapping
        ``tsv``: ``validation.tsv``, written only when there is no error (warnings listed).
    params : mapping
        ``cfg``: the configuration sections ``results_dir``, ``bids``, ``eeg``, ``fmri``,
        ``store``, ``model``, ``train`` (already checked against the schema); the whole
        configuration for ``validate_first``.
    threads : int
        Unused.

    Returns
    -------
    report : Report

    Raises
    ------
    SystemExit
        Exit status 1 when any error was found, after logging the whole table; its
        ``__cause__`` is the :class:`~neurobolt.validate.ValidationError` with the report.
    """
    config = copy.deepcopy(dict(params["cfg"]))
    if config.get("datasets"):
        report = validate_datasets(config)
    else:
        report = validate_dataset(
            config["bids"]["root"], config=config, check_keys=False, source="the config"
        )
    if report.errors:
        logger.error("%s", report.format())
        raise SystemExit(1) from ValidationError(report)
    logger.info("%s", report.format())
    write_text(outputs["tsv"], report.table().to_csv(sep="\t", index=False))
    return report
