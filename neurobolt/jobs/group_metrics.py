"""Job of the ``group_metrics`` rule: the group tables of every ``metrics.json``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import config as nbconfig
from ..evaluate import collect_metrics, read_test_series
from ..metrics import group_table
from ..provenance import write_text


def run(inputs: Mapping, outputs: Mapping, params: Mapping, *, threads: int = 1) -> pd.DataFrame:
    """Write ``group/metrics.tsv``, ``group/table.tsv`` and, when asked,
    ``group/generalisation.tsv``.

    ``group/metrics.tsv``: one row per scan (:data:`neurobolt.metrics.METRIC_COLUMNS`);
    ``group/table.tsv``: group figures per analysis, ROI and model
    (:func:`neurobolt.metrics.group_table`) from every ``metrics.json`` and the
    ``predictions.tsv`` next to it; ``group/generalisation.tsv``: zero_shot / finetune /
    joint per ROI.

    Parameters
    ----------
    inputs : mapping
        ``metrics``: the ``metrics.json`` files.
    outputs : mapping
        ``metrics``, ``table`` and optionally ``generalisation``.
    params : mapping
        ``cfg``: the ``evaluate`` section (``control_rois``, ``alpha``,
        ``n_permutations`` of the group null, ``seed``).
    threads : int
        Unused.
    """
    opts = nbconfig.section("evaluate", params.get("cfg"))
    paths = list(np.atleast_1d(inputs["metrics"]))
    metrics = collect_metrics(paths)
    metrics = metrics.sort_values(["analysis", "roi", "model", "scan"], kind="stable")
    write_text(outputs["metrics"], metrics.to_csv(sep="\t", index=False, float_format="%.6g"))
    group = group_table(
        metrics,
        read_test_series(paths),
        control_rois=list(opts["control_rois"]),
        alpha=float(opts["alpha"]),
        n_permutations=int(opts["n_permutations"]),
        seed=int(opts["seed"]),
    )
    write_text(outputs["table"], group.to_csv(sep="\t", index=False, float_format="%.6g"))
    if outputs.get("generalisation"):  # the cross-dataset analyses side by side
        from ..transfer import transfer_table

        write_text(
            outputs["generalisation"],
            transfer_table(metrics).to_csv(sep="\t", index=False, float_format="%.4f"),
        )
    return metrics
