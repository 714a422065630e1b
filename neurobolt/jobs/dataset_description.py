"""Job of the ``dataset_description`` rule: the derivative root's dataset-level files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..derivatives import BIDSIGNORE, atlas_description, dataset_description
from ..provenance import write_json, write_text


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> None:
    """Write ``dataset_description.json`` and, when asked for,
    ``atlas-DiFuMo_description.json`` and ``.bidsignore``.

    Parameters
    ----------
    inputs : mapping
        None used.
    outputs : mapping
        ``json``; optional ``atlas`` and ``bidsignore``.
    params : mapping
        ``cfg`` (the ``bids`` section: ``root``), optional ``atlas`` (``fmri.atlas``) and
        ``simulated`` (the simulator's atlas stands in for DiFuMo).
    threads : int
        Unused.
    """
    out = Path(outputs["json"])
    cfg = params.get("cfg") or {}
    write_json(out, dataset_description(source=cfg.get("root"), derivative_root=out.parent))
    if outputs.get("atlas"):
        desc = atlas_description(params.get("atlas"), simulated=bool(params.get("simulated")))
        write_json(outputs["atlas"], desc)
    if outputs.get("bidsignore"):
        write_text(outputs["bidsignore"], "\n".join(BIDSIGNORE) + "\n")
