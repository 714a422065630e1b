"""The configuration's cross-field checks: what the schema cannot express.

Made once here for the workflow (``workflow/rules/config.smk`` stops on them) and for
``neurobolt validate`` (which lists them as findings). This module sits above
:mod:`neurobolt.config` (the schema, defaults, sections), which imports no other neurobolt
module, so the stage modules can read their defaults without an import cycle.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import deprecated_keys, filled, schema_errors


def check_config(
    config: Mapping[str, Any], *, warn: bool = True, output_dir: bool = True
) -> list[str]:
    """Every cross-field check of a configuration; an empty list when it is consistent.

    The checks the schema cannot express, made once for the workflow (``common.smk``
    stops on them) and ``neurobolt validate`` (which lists them as findings):
    ``fmri.rois`` (``all`` expands to the atlas's labels), ``datasets`` (labels, roots,
    overrides; each dataset's merged configuration against the schema), the output
    directory outside every BIDS root, ``evaluate.rois`` within ``fmri.rois`` and no two
    ROIs sharing a file-name label, ``evaluate.analyses`` (``inter`` needs one dataset, the
    cross-dataset analyses two, ``finetune`` needs ``zero_shot``, ``generalisation``'s
    source and target), and ``predict`` (its ROIs, model and recordings).

    Parameters
    ----------
    config : mapping
        The configuration (defaults are filled in where missing; not changed).
    warn : bool
        Give a :class:`DeprecationWarning` for each deprecated key that is set.
    output_dir : bool
        Check that ``results_dir`` lies outside every dataset's ``bids.root``
        (``neurobolt validate`` checks it with its own ``--results-dir``).

    Returns
    -------
    errors : list of str
        One message per problem.
    """
    from . import bids as nbids
    from .datasets import dataset_views
    from .fmri.whole_brain import expand_rois

    if warn:
        for message in deprecated_keys(config):
            warnings.warn(message, DeprecationWarning, stacklevel=2)
    cfg = filled(config)
    errors: list[str] = []
    fmri_rois = cfg["fmri"]["rois"]
    try:
        fmri_rois = expand_rois(fmri_rois, cfg["fmri"]["atlas"])
    except (ValueError, TypeError) as err:
        errors.append(str(err))
        fmri_rois = [] if isinstance(fmri_rois, str) else list(fmri_rois)
    try:
        views = dataset_views(cfg)
    except ValueError as err:
        errors.append(str(err))
        views = {}
    multi = bool(cfg["datasets"])
    for label, view in views.items():
        if multi:
            errors += [f"datasets {label}: {e}" for e in schema_errors(view)]
        if not output_dir:
            continue
        try:
            nbids.check_output_dir(Path(cfg["results_dir"]), Path(view["bids"]["root"]))
        except (ValueError, KeyError, TypeError) as err:
            errors.append(str(err))
    errors += _check_analyses(cfg, fmri_rois, labels=list(views), multi=multi)
    return errors


def _check_analyses(
    cfg: Mapping[str, Any], fmri_rois: list[str], *, labels: list[str], multi: bool
) -> list[str]:
    from . import bids as nbids

    errors: list[str] = []
    model_rois = list(cfg["evaluate"]["rois"] or fmri_rois)
    models = list(cfg["evaluate"]["models"])
    analyses = list(cfg["evaluate"]["analyses"])
    try:
        file_labels = {nbids.filename_label(roi) for roi in model_rois}
    except ValueError as err:
        errors.append(str(err))
    else:
        if len(file_labels) != len(model_rois):
            errors.append(f"two ROIs share a file-name label: {model_rois}")
    unknown = sorted(set(model_rois) - set(fmri_rois))
    if unknown:
        errors.append(f"evaluate.rois {unknown} are not in fmri.rois")
    from .transfer import ANALYSES as TRANSFER
    from .transfer import source_target

    transfer = [a for a in analyses if a in TRANSFER]
    if multi and "inter" in analyses:
        errors.append(
            "evaluate.analyses: 'inter' splits the scans of one dataset; with several datasets"
            " use the cross-dataset analyses (zero_shot, finetune, joint) or run each dataset"
            " with a config of its own"
        )
    if transfer:
        if len(labels) < 2:
            errors.append(
                f"evaluate.analyses {transfer} need two datasets: list them under `datasets`"
            )
        else:
            try:
                source_target(cfg["generalisation"], labels)
            except ValueError as err:
                errors.append(str(err))
        if "finetune" in transfer and "zero_shot" not in transfer:
            errors.append(
                "evaluate.analyses: finetune starts from the zero_shot model; list zero_shot too"
            )
    errors += _check_predict(cfg["predict"], model_rois, models=models, analyses=analyses)
    return errors


def _check_predict(
    predict: Mapping[str, Any], model_rois: list[str], *, models: list[str], analyses: list[str]
) -> list[str]:
    from .predict import recording_name

    errors: list[str] = []
    unknown = sorted(set(predict["rois"] or model_rois) - set(model_rois))
    if unknown:
        errors.append(f"predict.rois {unknown} are not modelled (evaluate.rois)")
    if predict["model"] not in models:
        errors.append(
            f"predict.model {predict['model']!r} is not trained (evaluate.models: {models})"
        )
    if predict["held_out"] and "inter" not in analyses:
        errors.append("predict.held_out needs 'inter' in evaluate.analyses")
    scan = predict["intra_scan"]
    if predict["recordings"]:
        if scan is None and "inter" not in analyses:
            errors.append("predict.recordings with inter models needs 'inter' in analyses")
        if scan is not None and "intra" not in analyses:
            errors.append(f"predict.intra_scan {scan!r} is not a run with intra-subject models")
    names: dict[str, Path] = {}
    for path in predict["recordings"]:
        name = recording_name(path)
        if not name.startswith("sub-"):
            errors.append(f"predict.recordings: {path} is not a BIDS sub-* recording")
        if name in names and names[name] != Path(path):
            errors.append(f"predict.recordings: two recordings named {name}")
        names[name] = Path(path)
    return errors
