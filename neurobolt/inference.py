"""Batched inference, in one place: model files in, predictions out.

Validation during training (:func:`neurobolt.train.fit`), evaluation on the test split
(:mod:`neurobolt.evaluate`) and prediction from EEG alone (:mod:`neurobolt.predict`) all
predict through :func:`predict_batches` (a torch model) or :func:`predict_loader` (any
trained model, the ridge baseline included), so a recording of the training data gives
exactly the test predictions of ``evaluate_*``. ``model.pt`` files are read and written
here too (:func:`load_checkpoint`, :func:`save_checkpoint`, :func:`load_model`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .provenance import atomic_path
from .runtime import pick_device

__all__ = ["load_checkpoint", "load_model", "predict_batches", "predict_loader", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """``torch.save`` to a temporary name, then move into place.

    Saved through an open file, so the zip archive's folder is torch's fixed ``archive``,
    not the temporary file's name: the same state gives the same bytes (and SHA-256).
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as tmp_file:
        torch.save(state, tmp_file)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint with ``weights_only=True``; a damaged file is named and refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise RuntimeError(
            f"{path}: the checkpoint cannot be read ({type(err).__name__}:"
            f" {str(err).splitlines()[0]}); delete it"
            " to restart training from scratch."
        ) from None


def load_model(path: str | os.PathLike):
    """Rebuild a trained model from ``model.pt`` (``torch.load(weights_only=True)``).

    Returns
    -------
    model : nn.Module | RidgeBandpower
    record : dict
        What ``model.pt`` holds (model name, options, channels, ROIs, ...).
    """
    from .models import build_model
    from .models.baselines import RidgeBandpower

    record = load_checkpoint(path)
    if record["model"] == "ridge_bandpower":
        return RidgeBandpower().load_state_dict(record["state_dict"]), record
    model = build_model(record["model"], **record["options"])
    model.load_state_dict(record["state_dict"])
    return model, record


@torch.no_grad()
def predict_batches(
    model: nn.Module, loader: Iterable, ch_names, device
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets of a torch model over ``(x, y)`` batches, in their order."""
    model.eval()
    preds, trues = [], []
    for x, y in loader:
        preds.append(model(x.to(device), ch_names).float().cpu().numpy())
        trues.append(y.numpy())
    return np.concatenate(preds), np.concatenate(trues)


def predict_loader(
    model,
    record: Mapping[str, Any],
    loader: Iterable,
    *,
    ch_names: Sequence[str],
    device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets of a trained model (:func:`load_model`) over ``(x, y)`` batches.

    Parameters
    ----------
    model : nn.Module | RidgeBandpower
        The model; a ridge baseline predicts from all the windows at once.
    record : mapping
        Its ``model.pt`` record (``model``: the model's name).
    loader : iterable of (Tensor, Tensor)
        Batches of windows and targets, e.g. a DataLoader.
    ch_names : sequence of str
        The channels of the windows, in order.
    device : torch.device | None
        Where a torch model runs; None: :func:`neurobolt.runtime.pick_device` ("auto").

    Returns
    -------
    pred, true : ndarray
        Concatenated over the batches, in their order.
    """
    if record["model"] == "ridge_bandpower":
        xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in loader), strict=True)
        return model.predict(np.concatenate(xs)), np.concatenate(ys)
    device = pick_device("auto") if device is None else device
    model.to(device)
    return predict_batches(model, loader, ch_names, device)
