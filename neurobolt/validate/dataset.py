"""The validation pass over one dataset, or several: every problem in one table."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import bids as nbids
from .configuration import (
    check_config,
    check_config_paths,
    check_gap,
    check_inter_split,
    resolve_sections,
)
from .outputs import check_outputs
from .report import DATASET, Finding, Report, _rel
from .runs import check_bold, check_eeg, check_entities, check_fmriprep

# --------------------------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------------------------


def validate_dataset(
    bids_root: str | os.PathLike | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    results_dir: str | os.PathLike | None = None,
    check_keys: bool = True,
    source: str = "config",
) -> Report:
    """Check the configuration and every selected run; report all problems at once.

    Parameters
    ----------
    bids_root : path-like | None
        The raw BIDS dataset; None takes ``config["bids"]["root"]``.
    config : mapping | None
        The workflow configuration (any subset of its sections; defaults fill the
        rest). Its ``bids`` section selects the runs (fMRIPrep folder, space, filters).
    results_dir : path-like | None
        The output folder: refused inside the dataset, and the stores and checkpoints
        already there are checked. None takes ``config["results_dir"]`` when given.
    check_keys : bool
        Check the configuration's keys and types against the schema.
    source : str
        The configuration file's name, for the table.

    Returns
    -------
    report : Report
    """
    t0 = time.perf_counter()
    config = dict(config or {})
    sections = resolve_sections(config)
    bids_cfg = sections["bids"]
    root = Path(bids_root if bids_root is not None else bids_cfg["root"])
    if results_dir is None:
        results_dir = config.get("results_dir")
    report = Report(root=str(root))
    findings = report.findings
    if check_keys and config:
        findings += check_config(config, source=source)
    findings += check_config_paths(config, bids_root=root, results_dir=results_dir, source=source)
    findings += check_gap(config.get("train"), source=source)
    if results_dir is not None:
        findings += check_outputs(results_dir)
    if not (root / "dataset_description.json").is_file():
        report.seconds = time.perf_counter() - t0
        return report  # reported by check_config_paths; nothing else can be checked
    fmriprep_dir = bids_cfg["fmriprep_dir"]
    if fmriprep_dir and not Path(fmriprep_dir).is_dir():
        report.seconds = time.perf_counter() - t0
        return report  # reported by check_config_paths
    found = nbids.find_runs(
        root,
        fmriprep_dir=fmriprep_dir,
        space=bids_cfg["space"],
        subjects=bids_cfg["subjects"],
        sessions=bids_cfg["sessions"],
        tasks=bids_cfg["tasks"],
    )
    findings += check_entities(root)
    for problem in found.unpaired:
        stem = re.sub(r"_(eeg|bold)(\.[a-z.]+)?$", "", Path(problem.path).name)
        findings.append(
            Finding(
                stem,
                _rel(problem.path, root),
                f"unpaired: {problem.problem}",
                problem.fix or "add the missing files, or leave the run out",
                "warning",
            )
        )
    if not found.runs:
        findings.append(
            Finding(
                DATASET,
                str(root),
                "no paired EEG-fMRI run: no EEG recording has a BOLD run with the same"
                " entities and its fMRIPrep outputs"
                f" (space {bids_cfg['space']}, filters {bids_cfg['subjects']}"
                f" {bids_cfg['sessions']} {bids_cfg['tasks']})",
                "check bids.root, bids.fmriprep_dir, bids.space and the filters",
            )
        )
    for run in found.runs:
        report.runs.append(run.name)
        bold_findings, meta = check_bold(run, fmri=sections["fmri"], root=root)
        findings += bold_findings
        findings += check_fmriprep(
            run, fmri=sections["fmri"], n_volumes=meta["n_volumes"], root=root
        )
        findings += check_eeg(
            run,
            eeg=sections["eeg"],
            store=sections["store"],
            n_volumes=meta["n_volumes"],
            tr=meta["tr"],
            root=root,
        )
    if "inter" in (config.get("evaluate") or {}).get("analyses", ["inter"]):
        findings += check_inter_split([run.name for run in found.runs], train=config.get("train"))
    report.seconds = time.perf_counter() - t0
    return report


def validate_datasets(config: Mapping[str, Any], *, source: str = "the config") -> Report:
    """:func:`validate_dataset` for each of several datasets, in one table.

    Each dataset's rows name it (``<label>/<run>``). With cross-dataset analyses in
    ``evaluate.analyses``, the source's inter-subject split, the target's split and the
    channels both caps share are checked too.
    """
    from ..datasets import dataset_views
    from ..splits import held_out_scans, scan_subject
    from ..transfer import ANALYSES, common_channels, section, source_target, target_split

    t0 = time.perf_counter()
    try:
        views = dataset_views(config)
    except ValueError as err:
        report = Report(root="(datasets)")
        report.findings.append(Finding(DATASET, f"{source}: datasets", str(err), "fix the list"))
        return report
    report = Report(root=", ".join(str(v["bids"]["root"]) for v in views.values()))
    runs: dict[str, list[str]] = {}
    for label, view in views.items():
        view = {**view, "evaluate": {**(view.get("evaluate") or {}), "analyses": []}}
        sub = validate_dataset(view["bids"]["root"], config=view, check_keys=False, source=source)
        runs[label] = list(sub.runs)
        report.runs += [f"{label}/{run}" for run in sub.runs]
        for finding in sub.findings:
            finding.run = f"{label}/{finding.run}"
            report.findings.append(finding)
    analyses = [a for a in (config.get("evaluate") or {}).get("analyses", []) if a in ANALYSES]
    if analyses:
        gen = section(config.get("generalisation"))
        fix = "fix generalisation (source, target, target_counts/fractions/split_file)"
        try:
            src, tgt = source_target(gen, list(views))
            held_out_scans(runs[src], train_section=config.get("train"))
            target_split([scan_subject(f"{r}_windows.h5") for r in runs[tgt]], gen)
            common_channels(
                resolve_sections(views[src])["eeg"]["channels"],
                resolve_sections(views[tgt])["eeg"]["channels"],
                configured=gen["channels"],
            )
        except (ValueError, FileNotFoundError) as err:
            report.findings.append(
                Finding(DATASET, f"{source}: generalisation", f"cross-dataset split: {err}", fix)
            )
    report.seconds = time.perf_counter() - t0
    return report
