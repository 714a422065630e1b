"""Job of the ``runs_table`` rule: the paired runs of one dataset, and what was left out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..bids import Discovery, find_runs, runs_table
from ..provenance import provenance, write_json, write_text

logger = logging.getLogger("neurobolt.bids")


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> Discovery:
    """Write ``runs.tsv`` (the paired runs) and ``runs.json`` (what was left out, provenance).

    Parameters
    ----------
    inputs : mapping
        The raw files of the dataset's runs (only so that the rule reruns when they change).
    outputs : mapping
        ``tsv``: ``runs.tsv``; ``json``: ``runs.json``.
    params : mapping
        ``cfg``: the ``bids`` config section (``root``, ``fmriprep_dir``, ``space`` and the
        subject, session and task filters).
    threads : int
        Unused.

    Returns
    -------
    found : Discovery

    Raises
    ------
    RuntimeError
        When no paired run is found.
    """
    cfg = params["cfg"]
    found = find_runs(
        cfg["root"],
        fmriprep_dir=cfg.get("fmriprep_dir"),
        space=cfg.get("space", "MNI152NLin6Asym"),
        subjects=cfg.get("subjects"),
        sessions=cfg.get("sessions"),
        tasks=cfg.get("tasks"),
    )
    if not found.runs:
        raise RuntimeError(f"No paired EEG-fMRI run found in {cfg['root']}.\n{found.summary()}")
    write_text(outputs["tsv"], runs_table(found.runs).to_csv(sep="\t", index=False))
    write_json(
        outputs["json"],
        {
            "n_runs": len(found.runs),
            "left_out": [
                {"path": str(p.path), "problem": p.problem, "fix": p.fix} for p in found.unpaired
            ],
            **provenance(cfg),
        },
    )
    logger.info("%s", found.summary())
    return found
