"""Training: the paper's schedule, model selection on validation, resumable checkpoints.

The loop in :func:`fit` reads top to bottom: for each epoch, shuffle the
training windows with a per-epoch seed, step AdamW with a per-step
warm-up + cosine learning rate and layer-wise decay, validate, keep the
weights with the best validation R, and checkpoint everything needed to
resume (model, optimizer, epoch, step, best metric and weights, RNG states)
atomically. The test split is never given to it.

The rest of training lives elsewhere: the split tables in :mod:`neurobolt.splits`,
``model.pt`` files and batched prediction in :mod:`neurobolt.inference`, Pearson R in
:mod:`neurobolt.metrics`, and the ``train_*`` rules' job (splits, model building,
``model.pt``) in :mod:`neurobolt.jobs.train`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import config as nbconfig
from .heads import masked_mse, val_loss
from .inference import load_checkpoint, predict_batches, save_checkpoint
from .metrics import masked_pearson_r, pearson_r  # noqa: F401  (pearson_r: re-exported)
from .provenance import atomic_path
from .runtime import limit_threads, pick_device  # noqa: F401  (re-exported)

logger = logging.getLogger("neurobolt.train")


def _default(key: str) -> Any:
    """A ``train`` key's schema default (lists as tuples: the dataclass's field types)."""
    value = nbconfig.defaults(f"train.{key}")
    return tuple(value) if isinstance(value, list) else value


@dataclass
class TrainConfig:
    """The ``train`` config section; every default is the schema's (the paper's values)."""

    epochs: int = _default("epochs")
    batch_size_intra: int = _default("batch_size_intra")
    batch_size_inter: int = _default("batch_size_inter")
    lr: float = _default("lr")
    min_lr: float = _default("min_lr")
    warmup_epochs: int = _default("warmup_epochs")
    weight_decay: float = _default("weight_decay")
    layer_decay: float = _default("layer_decay")
    grad_clip: float | None = _default("grad_clip")
    seed: int = _default("seed")
    num_workers: int = _default("num_workers")
    device: str = _default("device")
    gap_s: float = _default("gap_s")
    intra_fractions: tuple[float, float, float] = _default("intra_fractions")
    intra_scheme: str = _default("intra_scheme")
    intra_folds: int = _default("intra_folds")
    inter_counts: tuple[int, int, int] | None = _default("inter_counts")
    inter_fractions: tuple[float, float, float] = _default("inter_fractions")
    inter_split_file: str | None = _default("inter_split_file")

    @classmethod
    def from_section(cls, section: Mapping[str, Any] | None) -> TrainConfig:
        """Build from a config section, refusing unknown keys by name."""
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown train option(s) {unknown}; known: {sorted(known)}")
        for key in ("intra_fractions", "inter_counts", "inter_fractions"):
            if section.get(key) is not None:
                section[key] = tuple(section[key])
        return cls(**section)


# --------------------------------------------------------------------------------------------
# Pieces (pure)
# --------------------------------------------------------------------------------------------


def lr_at(step: int, *, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Learning rate at ``step``: linear warm-up from 0, then cosine from ``lr`` to ``min_lr``.

    ``lr_at(0) = 0`` (when warming up), ``lr_at(warmup_steps) = lr`` and the cosine reaches
    ``min_lr`` at ``step = total_steps``.
    """
    if step < warmup_steps:
        return lr * step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, *, weight_decay: float, layer_decay: float) -> list[dict]:
    """AdamW parameter groups: no decay on norms/biases/embeddings, layer-wise lr scales.

    A model may provide ``num_layers``, ``layer_id_for(name)`` and ``no_weight_decay()``
    (the NeuroBOLT models do); otherwise every parameter gets scale 1 and only 1-D
    parameters skip weight decay. Each group carries ``lr_scale``.
    """
    no_decay = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    n_layers = getattr(model, "num_layers", None)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = not (param.ndim <= 1 or name.endswith(".bias") or name in no_decay)
        layer = model.layer_id_for(name) if n_layers is not None else 0
        scale = layer_decay ** (n_layers + 1 - layer) if n_layers is not None else 1.0
        group = groups.setdefault(
            (layer, decay),
            {"params": [], "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale},
        )
        group["params"].append(param)
    return list(groups.values())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; deterministic algorithms where available."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries may draw from the legacy global RNG
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def rng_state() -> dict:
    """Every RNG state training depends on (tensors and plain containers only)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state = {
        "python": random.getstate(),
        "numpy": [keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping) -> None:
    """Restore what :func:`rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(keys, np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def _uninitialized_memory_unfilled():
    """Within: deterministic mode does not fill every new tensor with NaN.

    :func:`seed_everything` turns on deterministic algorithms, which by default also fill
    each ``torch.empty`` result (every activation and gradient buffer) with NaN so that an
    op reading memory it never wrote gives the same answer on every run. The models' ops
    write their whole outputs, so here the fill only costs time (~700 fills, 2-4 % of a
    tiny-model training step on CPU); training is bit-identical without it (checked in
    ``tests/unit/train/test_train.py``). Only the fill is turned off: algorithms stay deterministic.
    """
    det = getattr(torch.utils, "deterministic", None)
    if det is None or not hasattr(det, "fill_uninitialized_memory"):
        yield
        return
    before = det.fill_uninitialized_memory
    det.fill_uninitialized_memory = False
    try:
        yield
    finally:
        det.fill_uninitialized_memory = before


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@_uninitialized_memory_unfilled()
def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    *,
    ch_names: Sequence[str],
    config: TrainConfig,
    batch_size: int,
    checkpoint: str | os.PathLike,
    log_tsv: str | os.PathLike,
    progress: bool = True,
) -> dict:
    """Train ``model`` and return the best (by validation R) weights and history.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x, ch_names)`` -> (batch, n_outputs).
    train_set, val_set : Dataset
        ``(x, y)`` pairs. Nothing else is read; the test split is never passed here.
    ch_names : sequence of str
        Electrode names of ``x``'s channels.
    config : TrainConfig
        Schedule, optimiser and seed.
    batch_size : int
        Windows per step.
    checkpoint : path-like
        Written (atomically) after every epoch; when it exists, training resumes from it.
    log_tsv : path-like
        Per-epoch log: epoch, lr, train loss, val loss, val R.
    progress : bool
        A progress bar per epoch.

    Returns
    -------
    result : dict
        ``state_dict`` (best weights), ``best_epoch``, ``best_val_r`` (mean over outputs),
        ``val_r`` (per output at the best epoch), ``history`` (list of per-epoch dicts).

    Notes
    -----
    With several outputs (``model.heads: shared``, one per ROI) the loss is averaged over
    the outputs and a NaN target is missing (:func:`neurobolt.heads.masked_mse`); the
    epoch kept is the one with the best mean validation R over the outputs (why:
    :mod:`neurobolt.heads`).
    """
    device = pick_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    groups = param_groups(model, weight_decay=config.weight_decay, layer_decay=config.layer_decay)
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999))
    steps_per_epoch = math.ceil(len(train_set) / batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = steps_per_epoch * config.warmup_epochs
    val_loader = DataLoader(val_set, batch_size=batch_size, num_workers=config.num_workers)

    start_epoch, step, history = 0, 0, []
    best = {"val_r": -math.inf, "epoch": -1, "state_dict": None, "per_output": []}
    if Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step, history, best = (
            state["epoch"] + 1,
            state["step"],
            state["history"],
            state["best"],
        )
        set_rng_state(state["rng"])
        logger.info("resuming from %s at epoch %d", checkpoint, start_epoch + 1)

    for epoch in range(start_epoch, config.epochs):
        # Shuffle with a per-epoch seed so that a resumed epoch sees the same order.
        order = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        train_loader = DataLoader(
            train_set,
            batch_size=batch_size,
            shuffle=True,
            generator=order,
            num_workers=config.num_workers,
            drop_last=len(train_set) > batch_size,
        )
        model.train()
        losses = []
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress)
        for x, y in bar:
            lr = lr_at(
                step,
                total_steps=total_steps,
                warmup_steps=warmup_steps,
                lr=config.lr,
                min_lr=config.min_lr,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            pred = model(x.to(device), ch_names)
            loss = masked_mse(pred.float(), y.to(device).float())  # NaN targets: missing
            if not torch.isfinite(loss):
                raise _non_finite(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch + 1}, step {step}",
                    checkpoint,
                    epoch,
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")

        pred, true = predict_batches(model, val_loader, ch_names, device)
        if not np.isfinite(pred).all():  # never checkpoint weights that give NaN/inf
            raise _non_finite(f"non-finite predictions after epoch {epoch + 1}", checkpoint, epoch)
        val_r = masked_pearson_r(pred, true)  # one R per output (ROI)
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": float(np.mean(losses)),
            "val_loss": val_loss(pred, true),
            "val_r": float(np.nanmean(val_r)) if np.isfinite(val_r).any() else -math.inf,
        }
        history.append(row)
        if row["val_r"] > best["val_r"]:
            best = {
                "val_r": row["val_r"],
                "epoch": epoch + 1,
                "per_output": val_r.tolist(),
                "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            }
        logger.info(
            "epoch %d: train loss %.4f, val loss %.4f, val R %.3f",
            epoch + 1,
            row["train_loss"],
            row["val_loss"],
            row["val_r"],
        )
        _write_log(log_tsv, history)
        save_checkpoint(
            checkpoint,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "history": history,
                "best": best,
                "rng": rng_state(),
                "config": asdict(config),
            },
        )
    if best["state_dict"] is None:
        raise RuntimeError("training ran no epoch: set train.epochs >= 1")
    return {
        "state_dict": best["state_dict"],
        "best_epoch": best["epoch"],
        "best_val_r": best["val_r"],
        "val_r": best["per_output"],
        "history": history,
    }


def _non_finite(what: str, checkpoint, completed: int) -> FloatingPointError:
    """The error that stops training on NaN/inf; the last good checkpoint is left in place."""
    if Path(checkpoint).exists():
        kept = f"the last good checkpoint {checkpoint} (after epoch {completed}) is kept"
    else:
        kept = "no epoch had completed, so there is no checkpoint"
    return FloatingPointError(
        f"{what}; training stopped and {kept}. Lower train.lr (or set train.grad_clip) or check"
        " the inputs for NaN/inf, then rerun (it resumes from the checkpoint)."
    )


def _write_log(path, history: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fid:
        writer = csv.DictWriter(fid, fieldnames=list(history[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(history)


def warn_random_init(name: str) -> str:
    """The warning given when a model starts from random weights."""
    message = f"{name}: no pretrained LaBraM weights (model.labram_checkpoint is null): random init"
    warnings.warn(message, stacklevel=2)
    logger.warning(message)
    return message


# --------------------------------------------------------------------------------------------
# The ridge baseline's data and log
# --------------------------------------------------------------------------------------------


def stack(dataset) -> tuple[np.ndarray, np.ndarray]:
    """All ``(x, y)`` of a dataset as two arrays (the ridge baseline fits on them)."""
    loader = DataLoader(dataset, batch_size=256)
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in loader), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def ridge_log(scores: Mapping[float, Sequence[float]], rois: Sequence[str]) -> str:
    """The ridge baseline's ``log.tsv``: per alpha, the validation R (mean over the ROIs)
    and, with several ROIs, each ROI's (``val_r_<roi>``)."""
    head = ["alpha", "val_r"] + ([f"val_r_{r}" for r in rois] if len(rois) > 1 else [])
    lines = ["\t".join(head)]
    for alpha, r in scores.items():
        r = np.asarray(r, float)
        cells = [np.nanmean(r) if np.isfinite(r).any() else np.nan]
        cells += list(r) if len(rois) > 1 else []
        lines.append(f"{alpha:g}\t" + "\t".join(f"{v:.6f}" for v in cells))
    return "\n".join(lines) + "\n"
