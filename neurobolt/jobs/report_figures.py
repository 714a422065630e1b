"""Job of the ``report_figures`` rule: the group figures of ``snakemake --report``.

``report.html`` (:mod:`neurobolt.jobs.report`) embeds its figures; Snakemake's own
report (``snakemake --report report.zip``) shows files that rules mark with ``report(...)``.
This job writes those from ``group/table.tsv`` and ``group/metrics.tsv``: ``table1.png``
(the group mean test R per ROI and model with its 95 % CI and group p, one panel per
analysis, with the number of scans whose per-scan p is below ``report.alpha``,
:func:`neurobolt.report.fig_table1`) and ``r_distributions_<analysis>.png`` (every scan's R,
:func:`neurobolt.report.fig_r_distributions`). The subject pages' QC figures are written by
:mod:`neurobolt.jobs.subject_report` next to the pages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..report.figures import fig_r_distributions, fig_table1, save_png
from ..report.pages import options
from ..report.tables import read_metrics

logger = logging.getLogger("neurobolt.report_figures")

__all__ = ["run"]


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> list[Path]:
    """Write the group figures of ``snakemake --report``.

    Parameters
    ----------
    inputs : mapping
        ``metrics``: ``group/metrics.tsv``; ``table``: ``group/table.tsv``.
    outputs : mapping
        ``table1`` and one ``r_<analysis>`` per analysis (PNG paths).
    params : mapping
        ``cfg``: the ``report`` section (``alpha``).
    threads : int
        Unused.

    Returns
    -------
    paths : list of Path
    """
    opts = options(params.get("cfg"))
    alpha = float(opts["alpha"])
    metrics = read_metrics(inputs["metrics"])
    group = pd.read_csv(inputs["table"], sep="\t")
    written = [save_png(fig_table1(group, alpha=alpha), outputs["table1"])]
    for key, path in outputs.items():
        if key.startswith("r_"):
            analysis = key.removeprefix("r_")
            fig = fig_r_distributions(metrics, analysis=analysis, alpha=alpha)
            written.append(save_png(fig, path))
    logger.info("wrote %s", ", ".join(p.name for p in written))
    return written
