"""Job of the ``train_intra`` / ``train_inter`` rules: fit a model, write ``model.pt``.

One model per (scan, ROI) intra-subject, or per ROI across scans inter-subject
(``model.heads: per_roi``); one model per scan, or across scans, for every ROI
(``shared``). Under ``train.intra_scheme: blocked_kfold`` one model per fold.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..heads import model_rois
from ..inference import load_checkpoint, save_checkpoint
from ..provenance import provenance, write_text
from ..splits import datasets_for, fold_paths, make_splits
from ..train import TrainConfig, fit, ridge_log, seed_everything, stack, warn_random_init

logger = logging.getLogger("neurobolt.train")


def run(inputs: Mapping, outputs: Mapping, params: Mapping, *, threads: int = 1) -> dict:
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
    threads : int
        Unused (the rule's script limits the thread pools).

    Returns
    -------
    record : dict
        What ``model.pt`` holds.
    """
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
        The split table (:func:`neurobolt.splits.make_splits`).
    outputs : mapping
        ``model`` and ``log``.
    params : mapping
        ``analysis``, ``roi`` or ``rois``, ``model_name``, ``model``, ``train`` and
        optionally ``scans`` (as :func:`run`).
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
        from ..models.baselines import RidgeBandpower

        ridge = RidgeBandpower()
        scores = ridge.fit(*stack(train_set), *stack(val_set))  # alpha -> val R per ROI
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
        model, pretrained, warning = _initial_model(
            name, options, ch_names=ch_names, init=init, labram=checkpoint_path, rois=rois
        )
        if init is not None:
            record["init"] = str(init)
        record["pretrained"] = pretrained
        if warning:
            record["warning"] = warning
        batch = config.batch_size_intra if analysis == "intra" else config.batch_size_inter
        result = fit(
            model,
            train_set,
            val_set,
            ch_names=ch_names,
            config=config,
            batch_size=batch,
            checkpoint=Path(outputs["model"]).with_name("checkpoint.pt"),
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


def _initial_model(name, options, *, ch_names, init, labram, rois) -> tuple[Any, Any, Any]:
    """The model training starts from: ``(model, pretrained, warning)``.

    ``init`` (a ``model.pt`` of the same model, options and channels: fine-tuning), else
    the LaBraM checkpoint ``labram`` for a model with a LaBraM branch, else random weights
    (with a warning when the model has a LaBraM branch).
    """
    from ..models import build_model, load_labram_checkpoint

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
        return model, start.get("pretrained"), None
    if getattr(model, "labram", None) is None:
        return model, None, None  # no LaBraM branch: nothing to load
    if labram:
        report = load_labram_checkpoint(model, labram)
        logger.info("loaded %s: %s", labram, report)
        return model, str(labram), None
    named = ", ".join(rois) if len(rois) <= 3 else f"{len(rois)} ROIs"
    return model, None, warn_random_init(f"{name} {named}")
