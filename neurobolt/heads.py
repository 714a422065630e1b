"""Several ROIs per model: the masked loss and validation R of multi-output training.

``model.heads: shared`` trains one encoder with one output per ROI (the rows of the
model's linear head) instead of one model per ROI (``per_roi``, the paper's protocol).
A target that is missing or invalid is NaN; it adds nothing to the loss or to the
validation R of its ROI, and the other ROIs of the same window still train.

Model selection keeps the epoch with the best *mean* validation R over the ROIs, not
the best epoch per ROI: the ROIs' outputs share the encoder, so the head of one ROI at
its own best epoch only works with the encoder of that epoch (one whole model per ROI
again, K times the storage and the prediction time), and on the 10 % validation split of
one scan a per-ROI maximum over epochs mostly picks noise; the mean over ROIs is a
steadier criterion. With one ROI both rules are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import masked_pearson_r  # noqa: F401  (re-exported: the validation R)

__all__ = ["HEADS", "masked_mse", "masked_pearson_r", "model_rois", "record_rois", "val_loss"]

#: The ``model.heads`` choices.
HEADS = ("per_roi", "shared")


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite targets: per output, then averaged over outputs.

    Parameters
    ----------
    pred, target : Tensor, shape (batch, n_outputs)
        Predictions and targets; a NaN (or inf) target is missing and ignored.

    Returns
    -------
    loss : Tensor
        A scalar. Each output's squared errors are averaged over its finite targets, and
        the outputs with at least one finite target are averaged, so every ROI weighs the
        same whatever its number of missing values. With every target finite this is
        :func:`torch.nn.functional.mse_loss`; with none, 0 (and no gradient).
    """
    finite = torch.isfinite(target)
    if bool(finite.all()):
        return F.mse_loss(pred, target)
    sq = torch.where(finite, pred - torch.where(finite, target, 0.0), 0.0) ** 2
    count = finite.sum(0)
    per_output = sq.sum(0) / count.clamp(min=1)
    has = count > 0
    if not bool(has.any()):
        return (pred * 0.0).sum()
    return per_output[has].mean()


def val_loss(pred: np.ndarray, true: np.ndarray) -> float:
    """The validation counterpart of :func:`masked_mse` (NumPy)."""
    pred = np.asarray(pred, float).reshape(len(pred), -1)
    true = np.asarray(true, float).reshape(len(true), -1)
    finite = np.isfinite(true)
    if finite.all():
        return float(np.mean((pred - true) ** 2))
    sq = np.where(finite, (pred - np.where(finite, true, 0.0)) ** 2, 0.0)
    count = finite.sum(0)
    has = count > 0
    return float(np.mean(sq.sum(0)[has] / count[has])) if has.any() else float("nan")


def model_rois(params: Mapping[str, Any]) -> list[str]:
    """The ROIs a training job fits: ``params["rois"]`` (shared heads) or ``[params["roi"]]``."""
    rois = params.get("rois") or [params["roi"]]
    if isinstance(rois, str):
        rois = [rois]
    rois = [str(r) for r in rois]
    if len(set(rois)) != len(rois):
        raise ValueError(f"an ROI is listed twice: {rois}")
    return rois


def record_rois(record: Mapping[str, Any]) -> list[str]:
    """The ROIs a ``model.pt`` record predicts, in its output order."""
    rois = record.get("rois") or [record["roi"]]
    return [str(r) for r in rois]
