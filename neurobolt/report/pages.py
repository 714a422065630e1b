"""The report pages: :class:`mne.Report` helpers and the model folders the pages read.

Both pages (``sub-<label>.html`` and ``report.html``) are :class:`mne.Report` pages with
static figures embedded, readable from disk without a server; their jobs are
:mod:`neurobolt.jobs.subject_report` and :mod:`neurobolt.jobs.report`.
"""

from __future__ import annotations

import html
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from .. import config as nbconfig
from ..provenance import atomic_path, config_hash
from .figures import save_png

__all__ = [
    "add_figure",
    "in_run",
    "new_report",
    "options",
    "provenance_html",
    "read_json",
    "read_model_dir",
    "save_report",
]


def options(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``report`` section: the schema's defaults with ``params`` merged over them.

    Raises
    ------
    ValueError
        For an unknown option.
    """
    return nbconfig.section("report", params)


def new_report(title: str):
    """An empty :class:`mne.Report` (PNG figures by default)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mne.Report(title=title, image_format="png", verbose=False)


def add_figure(
    report, fig, title: str, *, section: str, caption: str | None = None, fmt="png", png=None
):
    """Embed ``fig`` in ``report``; with ``png``, also save it there as a file of its own."""
    if png is not None:  # also a file of its own (snakemake --report shows it)
        save_png(fig, png)
    report.add_figure(fig, title=title, caption=caption, section=section, image_format=fmt)


def save_report(report, path: str | os.PathLike) -> None:
    """Write ``report`` as HTML to ``path`` (through a temporary name)."""
    with atomic_path(path) as tmp:
        report.save(tmp, open_browser=False, overwrite=True, verbose=False)


def provenance_html(params: Mapping[str, Any]) -> str:
    """A paragraph with neurobolt's version and the configuration's hash."""
    return (
        f"<p>neurobolt {html.escape(__version__)}, configuration hash"
        f" <code>{config_hash(params)}</code>.</p>"
    )


def read_json(path) -> dict:
    """A JSON file (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_model_dir(metrics_path: Path) -> dict[str, Any]:
    """A model folder: its metrics.json, predictions.tsv and log.tsv (when present)."""
    d = metrics_path.parent
    out = {"metrics": read_json(metrics_path), "dir": d}
    log = out["metrics"].get("train_log", "log.tsv")  # a shared-heads model's is elsewhere
    for key, name in (("predictions", "predictions.tsv"), ("log", log)):
        p = d / name
        out[key] = pd.read_csv(p, sep="\t") if p.is_file() else None
    return out


def in_run(model_dir: str | os.PathLike, run: str) -> bool:
    """Whether an intra-subject model folder (``.../intra/<run>/roi-*/model-*``) is ``run``'s.

    The run must be a whole folder name: ``sub-01_task-rest`` is not ``sub-01_task-rest_run-02``.
    """
    return run in Path(model_dir).parts
