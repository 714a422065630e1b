"""Job of the ``train_transfer`` rule: one cross-dataset model (zero_shot, finetune, joint)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from ..provenance import write_text
from ..train import TrainConfig
from ..transfer import common_channels, section, transfer_splits
from .train import train_model

logger = logging.getLogger("neurobolt.transfer")


def run(inputs: Mapping, outputs: Mapping, params: Mapping, *, threads: int = 1) -> dict:
    """Train one cross-dataset model for one ROI and write ``model.pt``.

    Parameters
    ----------
    inputs : mapping
        ``source`` and ``target``: each dataset's window stores; ``init``: the
        ``zero_shot`` model (``finetune`` only).
    outputs : mapping
        ``model``, ``splits``, ``log``.
    params : mapping
        ``analysis`` (``zero_shot``/``finetune``/``joint``), ``roi``, ``model_name``,
        ``model``, ``train``, ``generalisation`` (the section), ``source_scans`` and
        ``target_scans`` (the stores' scan keys), ``source_label`` and ``target_label``.
    threads : int
        Unused (the rule's script limits the thread pools).

    Returns
    -------
    record : dict
        What ``model.pt`` holds.
    """
    analysis = params["analysis"]
    gen = section(params["generalisation"])
    config = TrainConfig.from_section(params["train"])
    source = list(zip(_paths(inputs["source"]), params["source_scans"], strict=True))
    target = list(zip(_paths(inputs["target"]), params["target_scans"], strict=True))
    table = transfer_splits(source, target, analysis=analysis, config=config, gen=gen)
    write_text(outputs["splits"], table.to_csv(sep="\t", index=False))
    channels = common_channels(
        _store_channels(source[0][0]), _store_channels(target[0][0]), configured=gen["channels"]
    )
    changed = {k: v for k, v in (gen["finetune"] or {}).items() if v is not None}
    if analysis == "finetune" and changed:
        config = TrainConfig.from_section({**params["train"], **changed})
    stores = [path for path, _ in [*source, *target]]
    keyed = {**params, "scans": [key for _, key in [*source, *target]]}
    extra = {
        "source": params.get("source_label"),
        "target": params.get("target_label"),
        "n_source_train": int(((table["dataset"] == "source") & (table["split"] == "train")).sum()),
        "n_target_train": int(((table["dataset"] == "target") & (table["split"] == "train")).sum()),
    }
    logger.info("%s %s: %d common channels %s", analysis, params["roi"], len(channels), channels)
    return train_model(
        stores,
        table,
        outputs=outputs,
        params=keyed,
        config=config,
        channels=channels,
        init=inputs.get("init") if analysis == "finetune" else None,
        extra=extra,
    )


def _paths(value) -> list[str]:
    return [str(p) for p in np.atleast_1d(value)]


def _store_channels(path) -> list[str]:
    from ..store import WindowStore

    with WindowStore(path) as store:
        return list(store.ch_names)
