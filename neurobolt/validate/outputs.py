"""Checks of the outputs already in the results folder: window stores and checkpoints."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from .report import OUTPUTS, Finding, _strip

# --------------------------------------------------------------------------------------------
# Existing outputs
# --------------------------------------------------------------------------------------------


def check_torch_file(path: str | os.PathLike) -> None:
    """Refuse a truncated or foreign ``torch.save`` file from its zip directory alone.

    Parameters
    ----------
    path : path-like
        A ``model.pt`` or ``checkpoint.pt``.

    Raises
    ------
    ValueError
        Naming the file: not a readable zip archive, or one without a ``data.pkl`` record.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a complete PyTorch file ({err})") from None
    if not any(n.endswith("data.pkl") for n in names):
        raise ValueError(f"{path}: not a PyTorch file (no data.pkl record)")


def check_outputs(results_dir: str | os.PathLike) -> list[Finding]:
    """Window stores and model/checkpoint files already under ``results_dir``.

    A damaged one (truncated by a full disk, a failed copy) is named with how to
    rebuild it; a missing ``results_dir`` has nothing to check.

    Parameters
    ----------
    results_dir : path-like
        The workflow's output folder (``results_dir``).

    Returns
    -------
    findings : list of Finding
        One error per damaged ``*_windows.h5`` or ``*.pt`` (temporary ``.tmp-*`` files
        are skipped); empty when all are sound or the folder does not exist.
    """
    results = Path(results_dir)
    if not results.is_dir():
        return []
    found = []
    stores = sorted(p for p in results.rglob("*_windows.h5") if not p.name.startswith(".tmp-"))
    if stores:
        from ..store import StoreError, WindowStore

        for path in stores:
            try:
                WindowStore(path).close()
            except StoreError as err:
                found.append(
                    Finding(
                        OUTPUTS,
                        str(path),
                        f"damaged window store: {_strip(err, path)}",
                        f"delete it (rm {str(path)!r}) and rerun the workflow, which rebuilds it",
                    )
                )
    for path in sorted(p for p in results.rglob("*.pt") if not p.name.startswith(".tmp-")):
        try:
            check_torch_file(path)
        except ValueError as err:
            what = "checkpoint" if path.name == "checkpoint.pt" else "model"
            rebuild = (
                "training then restarts from scratch"
                if what == "checkpoint"
                else "the workflow retrains it"
            )
            found.append(
                Finding(
                    OUTPUTS,
                    str(path),
                    f"damaged {what} file: {_strip(err, path)}",
                    f"delete it (rm {str(path)!r}) and rerun: {rebuild}",
                )
            )
    return found
