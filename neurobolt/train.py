"""Training: the paper's schedule, model selection on validation, resumable checkpoints.

The loop in :func:`fit` reads top to bottom: for each epoch, shuffle the
training windows with a per-epoch seed, step AdamW with a per-step
warm-up + cosine learning rate and layer-wise decay, validate, keep the
weights with the best validation R, and checkpoint everything needed to
resume (model, optimizer, epoch, step, best metric and weights, RNG states)
atomically. The test split is never given to it.
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

from .heads import masked_mse, masked_pearson_r, model_rois, val_loss
from .provenance import atomic_path
from .runtime import limit_threads, pick_device  # noqa: F401  (re-exported)

logger = logging.getLogger("neurobolt.train")


@dataclass
class TrainConfig:
    """The ``train`` config section (the paper's values by default)."""

    epochs: int = 20
    batch_size_intra: int = 16
    batch_size_inter: int = 64
    lr: float = 3e-4
    min_lr: float = 1e-6
    warmup_epochs: int = 5
    weight_decay: float = 0.05
    layer_decay: float = 0.65
    grad_clip: float | None = None
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    gap_s: float = 20.0
    intra_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    intra_scheme: str = "holdout"
    intra_folds: int = 5
    inter_counts: tuple[int, int, int] | None = None
    inter_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    inter_split_file: str | None = None

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


def pearson_r(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson R per column of ``(n, k)`` arrays (0 where either column is constant)."""
    pred = np.asarray(pred, float).reshape(len(pred), -1)
    true = np.asarray(true, float).reshape(len(true), -1)
    pc, tc = pred - pred.mean(0), true - true.mean(0)
    denom = np.sqrt((pc**2).sum(0) * (tc**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * tc).sum(0) / denom
    return np.where(denom > 0, r, 0.0)


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


@torch.no_grad()
def predict(
    model: nn.Module, loader: DataLoader, ch_names, device
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets over a loader, in its order."""
    model.eval()
    preds, trues = [], []
    for x, y in loader:
        preds.append(model(x.to(device), ch_names).float().cpu().numpy())
        trues.append(y.numpy())
    return np.concatenate(preds), np.concatenate(trues)


@contextmanager
def _uninitialized_memory_unfilled():
    """Within: deterministic mode does not fill every new tensor with NaN.

    :func:`seed_everything` turns on deterministic algorithms, which by default also fill
    each ``torch.empty`` result (every activation and gradient buffer) with NaN so that an
    op reading memory it never wrote gives the same answer on every run. The models' ops
    write their whole outputs, so here the fill only costs time (~700 fills, 2-4 % of a
    tiny-model training step on CPU); training is bit-identical without it (checked in
    ``tests/test_train.py``). Only the fill is turned off: algorithms stay deterministic.
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


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """``torch.save`` to a temporary name, then move into place."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


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

        pred, true = predict(model, val_loader, ch_names, device)
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
# Rule: one model per (scan, ROI) intra-subject, or per ROI across scans inter-subject
# (model.heads: per_roi); one model per scan, or across scans, for every ROI (shared)
# --------------------------------------------------------------------------------------------


def scan_subject(store_path: str | os.PathLike) -> tuple[str, str]:
    """``(scan, subject)`` from a store's file name ``sub-XX[_ses-YY]..._windows.h5``."""
    scan = Path(store_path).name.removesuffix("_windows.h5")
    subject = scan.split("_")[0].removeprefix("sub-")
    return scan, subject


def inter_scan_split(scans: Sequence[tuple[str, str]], config: TrainConfig):
    """The inter-subject split of whole scans: ``Series`` scan -> ``train``/``val``/``test``.

    Parameters
    ----------
    scans : sequence of (str, str)
        ``(scan, subject)`` pairs (:func:`scan_subject`).
    config : TrainConfig
        ``inter_split_file``, or ``inter_counts``/``inter_fractions`` and ``seed``.
    """
    import pandas as pd

    from .splits import check_grouped, inter_split, read_split_table

    frame = pd.DataFrame(list(scans), columns=["scan", "subject"])
    if config.inter_split_file:
        by_scan = read_split_table(config.inter_split_file, frame["scan"])
    else:
        by_scan = inter_split(
            frame,
            counts=config.inter_counts,
            fractions=config.inter_fractions,
            seed=config.seed,
        )
    check_grouped(by_scan, dict(scans))
    return by_scan


def make_splits(
    stores: Sequence[str | os.PathLike],
    *,
    analysis: str,
    config: TrainConfig,
    scans: Sequence[str] | None = None,
    roles: Mapping[str, str] | None = None,
):
    """Split tables: one row per store row (``scan, subject, row, volume, onset_s, split``).

    Parameters
    ----------
    stores : sequence of path-like
        The window stores.
    analysis : str
        ``intra`` (each store split in time), ``inter`` (whole scans, grouped by subject),
        or a cross-dataset analysis, whose whole-scan ``roles`` are given.
    config : TrainConfig
        The split settings.
    scans : sequence of str | None
        Each store's scan key (the workflow's run key, ``dataset/name`` when several
        datasets are configured); None: the store's file name.
    roles : mapping | None
        Scan key -> ``train``/``val``/``test``/``unused`` for a cross-dataset analysis.
    """
    import pandas as pd

    from .splits import intra_split, kfold_rows
    from .store import WindowStore

    named = [scan_subject(p) for p in stores]
    keys = list(scans) if scans is not None else [scan for scan, _ in named]
    if analysis == "inter":
        by_name = inter_scan_split(named, config)
        by_scan = pd.Series([by_name[scan] for scan, _ in named], index=keys)
    elif analysis != "intra":
        if roles is None:
            raise ValueError(f"analysis {analysis!r} needs the scans' roles")
        by_scan = pd.Series(roles)
    rows = []
    for path, scan, (_, subject) in zip(stores, keys, named, strict=True):
        with WindowStore(path) as store:
            if analysis == "intra" and config.intra_scheme == "blocked_kfold":
                rows += kfold_rows(
                    store,
                    scan,
                    subject,
                    folds=config.intra_folds,
                    val_fraction=config.intra_fractions[1],
                    gap_s=config.gap_s,
                )
                continue
            if analysis == "intra":
                labels = intra_split(
                    store.onsets,
                    store.valid,
                    tr=store.tr,
                    sfreq=store.sfreq,
                    window_s=store.window_s,
                    fractions=config.intra_fractions,
                    gap_s=config.gap_s,
                )
            else:
                labels = np.where(store.valid, by_scan[scan], "invalid")
            for row, label in enumerate(labels):
                rows.append(
                    {
                        "scan": scan,
                        "subject": subject,
                        "row": row,
                        "volume": int(store.volumes[row]),
                        "onset_s": float(store.onsets[row] / store.sfreq),
                        "split": str(label),
                    }
                )
    return pd.DataFrame(rows)


def datasets_for(stores, table, split: str, *, rois, scans=None, channels=None):
    """A WindowDataset of one split's rows over the stores.

    ``scans`` are the stores' keys in ``table["scan"]`` (default: their file names);
    ``channels`` the electrodes to read, in order (default: the stores' own).
    """
    from .store import WindowDataset

    keys = list(scans) if scans is not None else [scan_subject(p)[0] for p in stores]
    indices = [
        table.loc[(table["scan"] == key) & (table["split"] == split), "row"].to_numpy()
        for key in keys
    ]
    keep = [i for i, rows in enumerate(indices) if rows.size]
    return WindowDataset(
        [stores[i] for i in keep], [indices[i] for i in keep], rois=rois, channels=channels
    )


def _stack(dataset) -> tuple[np.ndarray, np.ndarray]:
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


def run_train(inputs: Mapping, outputs: Mapping, params: Mapping) -> dict:
    """Train one model (a registry model or a baseline) for one or more ROIs; write ``model.pt``.

    Parameters
    ----------
    inputs : mapping
        ``stores``: the window store(s) — one for intra-subject, all scans for inter.
    outputs : mapping
        ``model`` (``model.pt``), ``splits`` (``splits.tsv``), ``log`` (``log.tsv``).
    params : mapping
        ``analysis`` (``intra``/``inter``), ``roi`` (one ROI) or ``rois`` (several: one
        output each, ``model.heads: shared``), ``model_name``, ``model`` (the model section:
        preset and options), ``train`` (the train section), and optionally ``scans``: each
        store's scan key (default: its file name).
    """
    from .provenance import write_text

    stores = [str(p) for p in np.atleast_1d(inputs["stores"])]
    scans = params.get("scans")
    config = TrainConfig.from_section(params["train"])
    table = make_splits(stores, analysis=params["analysis"], config=config, scans=scans)
    write_text(outputs["splits"], table.to_csv(sep="\t", index=False))
    if "fold" not in table.columns:
        return train_model(stores, table, outputs=outputs, params=params, config=config)
    # blocked k-fold: one model per fold (model.fold-K.pt, log.fold-K.tsv); model.pt is
    # fold 0's model and lists the folds' files for evaluate
    import pandas as pd

    from .splits import fold_paths

    folds = sorted(table["fold"].unique())
    paths = fold_paths(outputs["model"], len(folds))
    logs = [Path(p).with_name(f"log.fold-{k}.tsv") for k, p in zip(folds, paths, strict=True)]
    records = [
        train_model(
            stores,
            table[table["fold"] == k],
            outputs={"model": path, "log": log},
            params=params,
            config=config,
        )
        for k, path, log in zip(folds, paths, logs, strict=True)
    ]
    merged = pd.concat(
        [pd.read_csv(log, sep="\t").assign(fold=k) for k, log in zip(folds, logs, strict=True)]
    )
    write_text(outputs["log"], merged.to_csv(sep="\t", index=False))
    record = {**records[0], "folds": [p.name for p in paths]}
    record["best_val_r"] = float(np.mean([r["best_val_r"] for r in records]))
    if records[0].get("val_r"):  # per ROI: the folds' mean, as best_val_r
        record["val_r"] = {
            roi: float(np.mean([r["val_r"][roi] for r in records])) for roi in records[0]["val_r"]
        }
    save_checkpoint(outputs["model"], record)
    return record


def train_model(
    stores: Sequence[str],
    table,
    *,
    outputs: Mapping,
    params: Mapping,
    config: TrainConfig,
    channels: Sequence[str] | None = None,
    init: str | os.PathLike | None = None,
    extra: Mapping | None = None,
) -> dict:
    """Fit one model on a split table's ``train`` rows, select on its ``val`` rows, and
    write ``model.pt`` (the test rows are never read here).

    Parameters
    ----------
    stores : sequence of str
        The window stores the table's rows refer to.
    table : DataFrame
        The split table (:func:`make_splits`).
    outputs : mapping
        ``model`` and ``log``.
    params : mapping
        ``analysis``, ``roi`` or ``rois``, ``model_name``, ``model``, ``train`` and
        optionally ``scans`` (as :func:`run_train`).
    config : TrainConfig
        The schedule (may differ from ``params["train"]``, e.g. for fine-tuning).
    channels : sequence of str | None
        Electrodes to train on, in order; None: the stores' own (which must match).
    init : path-like | None
        A ``model.pt`` to start from (fine-tuning): same model and options.
    extra : mapping | None
        More fields for the record (e.g. the datasets of a cross-dataset analysis).

    Returns
    -------
    record : dict
        What ``model.pt`` holds.
    """
    from .models import build_model, load_labram_checkpoint
    from .models.baselines import RidgeBandpower
    from .provenance import provenance, write_text

    analysis, name = params["analysis"], params["model_name"]
    rois = model_rois(params)
    scans = params.get("scans")
    train_set = datasets_for(stores, table, "train", rois=rois, scans=scans, channels=channels)
    val_set = datasets_for(stores, table, "val", rois=rois, scans=scans, channels=channels)
    ch_names = train_set.ch_names
    model_section = dict(params["model"])
    checkpoint_path = model_section.pop("labram_checkpoint", None)
    model_section.pop("name", None)
    model_section.pop("heads", None)  # how the workflow groups ROIs into jobs
    record = {
        "analysis": analysis,
        "roi": rois[0] if len(rois) == 1 else None,
        "rois": rois,
        "model": name,
        "ch_names": ch_names,
        "n_train": len(train_set),
        "n_val": len(val_set),
        **dict(extra or {}),
        **provenance(params),
    }
    if name == "ridge_bandpower":  # no weights to start from: fine-tuning refits it
        ridge = RidgeBandpower()
        scores = ridge.fit(*_stack(train_set), *_stack(val_set))  # alpha -> val R per ROI
        write_text(outputs["log"], ridge_log(scores, rois))
        val_r = [scores[a][j] for j, a in enumerate(np.atleast_1d(ridge.alpha))]
        record.update(
            state_dict=ridge.state_dict(),
            best_val_r=float(np.nanmean(val_r)),
            val_r=dict(zip(rois, map(float, val_r), strict=True)),
            options={},
        )
    else:
        n_patches = int(round(train_set[0][0].shape[1]))
        options = {**model_section, "n_outputs": len(rois), "n_patches": n_patches}
        seed_everything(config.seed)  # the random initialisation is part of the result
        model = build_model(name, **options)
        if init is not None:
            start = load_checkpoint(init)
            if start["model"] != name or start["options"] != options:
                raise ValueError(
                    f"{init}: a {start['model']} model with options {start['options']}"
                    f" cannot start a {name} model with options {options}"
                )
            if list(start["ch_names"]) != list(ch_names):
                raise ValueError(
                    f"{init}: trained on channels {start['ch_names']}, not {list(ch_names)}"
                )
            model.load_state_dict(start["state_dict"])
            record["init"] = str(init)
            record["pretrained"] = start.get("pretrained")
        elif getattr(model, "labram", None) is None:
            record["pretrained"] = None  # no LaBraM branch: nothing to load
        elif checkpoint_path:
            report = load_labram_checkpoint(model, checkpoint_path)
            logger.info("loaded %s: %s", checkpoint_path, report)
            record["pretrained"] = str(checkpoint_path)
        else:
            record["pretrained"] = None
            named = ", ".join(rois) if len(rois) <= 3 else f"{len(rois)} ROIs"
            record["warning"] = warn_random_init(f"{name} {named}")
        batch = config.batch_size_intra if analysis == "intra" else config.batch_size_inter
        ckpt = Path(outputs["model"]).with_name("checkpoint.pt")
        result = fit(
            model,
            train_set,
            val_set,
            ch_names=ch_names,
            config=config,
            batch_size=batch,
            checkpoint=ckpt,
            log_tsv=outputs["log"],
        )
        record.update(
            state_dict=result["state_dict"],
            best_val_r=result["best_val_r"],
            val_r=dict(zip(rois, map(float, result["val_r"]), strict=True)),
            best_epoch=result["best_epoch"],
            options=options,
        )
    save_checkpoint(outputs["model"], record)
    Path(outputs["model"]).with_name("checkpoint.pt").unlink(missing_ok=True)
    logger.info("%s %s %s: validation R %s", analysis, name, rois, record["val_r"])
    return record
