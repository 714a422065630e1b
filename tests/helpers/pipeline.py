"""One run of the small simulated dataset taken through every stage with the ``run_*`` functions.

Shared by test_predict.py and test_report.py (built once per session): the run's
EEG is cleaned, its ROI signals extracted, its window store written, a tiny
NeuroBOLT model and the ridge baseline trained (intra-subject) and evaluated on
the test split, exactly as the workflow's rules do; then the whole brain (``fmri.rois:
all``) with one shared-heads model per model name.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from neurobolt.derivatives import roi_signals_suffix
from neurobolt.jobs import roi_signals, windows
from neurobolt.jobs.clean_eeg import run as run_clean_eeg
from neurobolt.jobs.evaluate import run as run_evaluate
from neurobolt.jobs.train import run as run_train
from neurobolt.simulate import atlas_files, planned_runs, run_files
from neurobolt.store import WindowStore

REPO = Path(__file__).resolve().parents[2]
RUN = "sub-02_ses-01_task-rest"  # sub-02 has one session: its QC page has one run
ROIS = {"Cuneus": "Cuneus", "CerebellumCrusII": "Cerebellum Crus II"}
MODELS = ("neurobolt", "ridge_bandpower")
_CACHE: dict[str, dict] = {}


def demo_config() -> dict:
    """The demo config, with a long test block (2-min runs) and one quick epoch."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["train"].update(
        epochs=1, warmup_epochs=0, intra_fractions=[0.4, 0.2, 0.4], gap_s=4.2, batch_size_intra=8
    )
    config["evaluate"].update(n_permutations=100)
    return config


def build(dataset: Path, out: Path) -> dict:
    """Run every stage for :data:`RUN`; return the paths (cached per output folder)."""
    if str(out) in _CACHE:
        return _CACHE[str(out)]
    config = demo_config()
    run = next(r for r in planned_runs(n_subjects=2, n_two_session=1) if r.stem == RUN)
    files = run_files(dataset, run)
    atlas = atlas_files(dataset)
    sub = out / "sub-02" / "ses-01"
    p = {
        "config": config,
        "files": files,
        "atlas": atlas,
        "clean": sub / "eeg" / f"{RUN}_desc-clean_eeg.vhdr",
        "qc": sub / "eeg" / f"{RUN}_desc-clean_qc.json",
        "qc_signals": sub / "eeg" / f"{RUN}_desc-clean_qc.h5",
        "rois": sub / "func" / f"{RUN}_{roi_signals_suffix()}.tsv",
        "store": sub / "func" / f"{RUN}_windows.h5",
        "models": {},
    }
    run_clean_eeg(
        {"eeg": files["vhdr"], "bold": files["bold"]},
        {"eeg": p["clean"], "qc": p["qc"], "qc_signals": p["qc_signals"]},
        {"cfg": config["eeg"]},
    )
    _rois_and_store(files, atlas, config, clean=p["clean"], rois=p["rois"], store=p["store"])
    for label, roi in ROIS.items():
        for model in MODELS:
            d = out / "models" / "intra" / RUN / f"roi-{label}" / f"model-{model}"
            run_train(
                {"stores": [p["store"]]},
                {"model": d / "model.pt", "splits": d / "splits.tsv", "log": d / "log.tsv"},
                {
                    "analysis": "intra",
                    "roi": roi,
                    "model_name": model,
                    "model": copy.deepcopy(config["model"]),
                    "train": config["train"],
                },
            )
            run_evaluate(
                {"model": d / "model.pt", "splits": d / "splits.tsv", "stores": [p["store"]]},
                {"predictions": d / "predictions.tsv", "metrics": d / "metrics.json"},
                {"cfg": config["evaluate"]},
            )
            p["models"][(label, model)] = d
    build_whole_brain(p, out / "whole brain")
    _CACHE[str(out)] = p
    return p


def build_whole_brain(p: dict, out: Path) -> None:
    """The same run with ``fmri.rois: all`` and ``model.heads: shared``, as the rules do it:
    every atlas component + the global signal as targets, one model per model name for all
    of them (intra-subject), each ROI's predictions.tsv and metrics.json in its own
    ``roi-<label>/model-<name>/`` folder."""
    from neurobolt.bids import filename_label

    config = copy.deepcopy(p["config"])
    config["fmri"]["rois"] = "all"
    config["model"]["heads"] = "shared"
    sub = out / "sub-02" / "ses-01" / "func"
    p["rois_all"] = sub / f"{RUN}_atlas-DiFuMo64_timeseries.tsv"
    p["store_all"] = sub / f"{RUN}_windows.h5"
    files, atlas = p["files"], p["atlas"]
    _rois_and_store(
        files, atlas, config, clean=p["clean"], rois=p["rois_all"], store=p["store_all"]
    )
    with WindowStore(p["store_all"]) as store:
        rois = list(store.roi_names)
    p["all_rois"], p["shared"] = rois, {}
    for model in MODELS:
        d = out / "models" / "intra" / RUN / "shared" / f"model-{model}"
        run_train(
            {"stores": [p["store_all"]]},
            {"model": d / "model.pt", "splits": d / "splits.tsv", "log": d / "log.tsv"},
            {
                "analysis": "intra",
                "rois": rois,
                "model_name": model,
                "model": copy.deepcopy(config["model"]),
                "train": config["train"],
            },
        )
        dirs = [d.parent.parent / f"roi-{filename_label(r)}" / f"model-{model}" for r in rois]
        run_evaluate(
            {"model": d / "model.pt", "splits": d / "splits.tsv", "stores": [p["store_all"]]},
            {
                "predictions": [x / "predictions.tsv" for x in dirs],
                "metrics": [x / "metrics.json" for x in dirs],
            },
            {"cfg": config["evaluate"]},
        )
        p["shared"][model] = d
        for roi, x in zip(rois, dirs, strict=True):
            p["shared"][(filename_label(roi), model)] = x


def _rois_and_store(files, atlas, config, *, clean, rois, store) -> None:
    """The ``roi_signals`` and ``windows`` jobs of the test run, as the workflow calls them."""
    roi_signals.run(
        {
            "preproc_bold": files["preproc_bold"],
            "bold": files["bold"],
            "mask": files["mask"],
            "confounds": files["confounds"],
            "atlas_maps": atlas["maps"],
            "atlas_labels": atlas["labels"],
        },
        {"timeseries": rois},
        {"cfg": config["fmri"]},
    )
    store_params = {"cfg": config["store"], "volume_marker": config["eeg"]["volume_marker"]}
    windows.run({"eeg": clean, "rois": rois}, {"store": store}, store_params)
