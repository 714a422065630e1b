"""The simulated dataset's run plan and file names (read at parse time by the workflow).

Nothing here simulates or writes: :func:`planned_runs` and :func:`run_files` tell
Snakemake which files the ``simulate`` rule makes.
"""

from __future__ import annotations

from pathlib import Path

from .. import config as nbconfig
from .params import SPACE, SimRun


def planned_runs(
    *,
    n_subjects: int = nbconfig.defaults("simulate.n_subjects"),
    n_two_session: int = nbconfig.defaults("simulate.n_two_session"),
    task: str = nbconfig.defaults("simulate.task"),
    task_design: dict | None = None,
) -> list[SimRun]:
    """Return the runs :func:`simulate_dataset` writes, without writing anything.

    The first ``n_two_session`` subjects have two sessions; every other
    subject has one. Every second subject has an inverted ECG lead. With a
    ``task_design`` the runs have stimuli (and :func:`run_files` lists their
    ``func/*_events.tsv``).
    """
    runs = []
    for i in range(1, n_subjects + 1):
        for ses in range(1, 3 if i <= n_two_session else 2):
            runs.append(
                SimRun(
                    f"{i:02d}",
                    f"{ses:02d}",
                    task,
                    inverted_ecg=(i % 2 == 0),
                    stimuli=task_design is not None,
                )
            )
    return runs


def run_files(bids_root: str | Path, run: SimRun, *, space: str = SPACE) -> dict[str, Path]:
    """Paths of the files :func:`simulate_dataset` writes for one run.

    ``bold_events`` (the BOLD run's stimuli) is listed only for a run with stimuli.
    """
    root = Path(bids_root)
    eeg = root / run.rel_dir / "eeg"
    func = root / run.rel_dir / "func"
    prep = root / "derivatives" / "fmriprep" / run.rel_dir / "func"
    truth = root / "derivatives" / "simulation" / run.rel_dir
    s = run.stem
    files = {
        "vhdr": eeg / f"{s}_eeg.vhdr",
        "eeg": eeg / f"{s}_eeg.eeg",
        "vmrk": eeg / f"{s}_eeg.vmrk",
        "events": eeg / f"{s}_events.tsv",
        "channels": eeg / f"{s}_channels.tsv",
        "eeg_json": eeg / f"{s}_eeg.json",
        "bold": func / f"{s}_bold.nii.gz",
        "bold_json": func / f"{s}_bold.json",
        "preproc_bold": prep / f"{s}_space-{space}_desc-preproc_bold.nii.gz",
        "preproc_json": prep / f"{s}_space-{space}_desc-preproc_bold.json",
        "mask": prep / f"{s}_space-{space}_desc-brain_mask.nii.gz",
        "confounds": prep / f"{s}_desc-confounds_timeseries.tsv",
        "truth_eeg": truth / "eeg" / f"{s}_desc-clean_eeg.fif",
        "truth_rpeaks": truth / "eeg" / f"{s}_desc-rpeaks_events.tsv",
        "truth_rois": truth / "func" / f"{s}_desc-truth_timeseries.tsv",
        "neural_rois": truth / "func" / f"{s}_desc-neural_timeseries.tsv",
    }
    if run.stimuli:
        files["bold_events"] = func / f"{s}_events.tsv"
    return files


def atlas_files(bids_root: str | Path) -> dict[str, Path]:
    """Paths of the simulator's atlas on the BOLD grid.

    ``maps`` (what the pipeline extracts with), ``labels`` (DiFuMo-style CSV) and
    ``generating_maps`` (ground truth: the maps that made the BOLD; in the realistic
    preset ``maps`` are these smoothed and shifted by about a voxel).
    """
    atlas = Path(bids_root) / "derivatives" / "simulation" / "atlas"
    return {
        "maps": atlas / "maps.nii.gz",
        "labels": atlas / "labels_64_dictionary.csv",
        "generating_maps": atlas / "desc-generating_maps.nii.gz",
    }


def simulation_json(bids_root: str | Path) -> Path:
    """Path of the JSON that records the simulation (written last: its presence means done)."""
    return Path(bids_root) / "derivatives" / "simulation" / "simulation.json"
