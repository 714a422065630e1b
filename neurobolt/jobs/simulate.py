"""Job of the ``simulate`` rule: write the simulated BIDS dataset of one ``simulate`` section."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..simulate import simulate_dataset


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> None:
    """Write the simulated dataset described by the ``simulate`` section.

    Parameters
    ----------
    inputs : mapping
        None used (the dataset is a function of the parameters).
    outputs : mapping
        ``done``: ``<root>/derivatives/simulation/simulation.json`` (the dataset's root is
        two folders above its folder); optional ``files``: every file the rule declares,
        checked afterwards.
    params : mapping
        ``cfg``: the ``simulate`` config section.
    threads : int
        Runs simulated in parallel (``simulate_dataset``'s ``n_jobs``).

    Raises
    ------
    RuntimeError
        When a declared file was not written.
    """
    cfg = params["cfg"]
    opts = {k: v for k, v in cfg.items() if k not in {"enabled", "root"}}
    simulate_dataset(Path(outputs["done"]).parents[2], n_jobs=threads, **opts)
    missing = [str(p) for p in outputs.get("files", []) if not Path(p).exists()]
    if missing:
        raise RuntimeError(f"simulate: expected outputs were not written: {missing[:5]}")
