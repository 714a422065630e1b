"""Simulate runs and write the dataset: :func:`simulate_run`, :func:`simulate_dataset`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import config as nbconfig
from ..provenance import atomic_path, provenance, write_json
from .bids import _write_bold, _write_eeg, _write_static, _write_tsv
from .eeg import Latents, simulate_eeg
from .fmri import _mni_grid, _roi_maps, extraction_maps, head_motion, simulate_bold
from .params import (
    DIFUMO64_LABELS,
    EVOKED_ELECTRODES,
    GLOBAL_SIGNAL,
    RHYTHMS,
    WINDOW_S,
    SimParams,
    SimRun,
    _marker_description,
)
from .plan import planned_runs, run_files, simulation_json
from .signals import draw_traits

logger = logging.getLogger("neurobolt.simulate")


@dataclass
class _RunData:
    raw: tuple  # in-scanner recording (data in V, channel names) at params.sfreq
    clean_200: mne.io.RawArray  # ground-truth clean EEG at 200 Hz
    onsets: np.ndarray  # volume-marker samples
    r_peaks: np.ndarray  # true R-peak samples
    latents: Latents  # the run's slow processes (envelopes, arousal, respiration, heart rate)
    bold: np.ndarray  # (x, y, z, t) float32
    truth: pd.DataFrame  # EEG-coupled part of each target's generating component, per volume
    neural: pd.DataFrame  # each target's component without motion, physiology, thermal noise
    ceiling: dict  # ROI -> best R of an EEG-based prediction of the pipeline's target
    confounds: pd.DataFrame
    stimuli: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # stimulus samples
    traits: dict = field(default_factory=dict)  # the subject's random traits (summary)
    motion: np.ndarray | None = None  # (n_volumes, 6) head position (mm, rad)


def make_grid(params: SimParams):
    """``(shape, affine, mask, generating maps, extraction maps)`` of a dataset."""
    shape, affine, mask = _mni_grid(params.voxel_mm)
    maps = _roi_maps(params, shape, affine, mask)
    ext = extraction_maps(maps, mask, voxel_mm=params.voxel_mm, easy=params.easy)
    return shape, affine, mask, maps, ext


def simulate_run(
    params: SimParams, run: SimRun, *, grid, progress=None, workers: int = 1
) -> _RunData:
    """Simulate one run in memory (EEG, BOLD, ground truth); see ``docs/simulator.md``.

    ``grid`` is :func:`make_grid`'s tuple (or its first four items: the extraction maps
    are then derived from the generating ones). ``workers`` threads share parts of the
    EEG simulation (the result does not depend on it).
    """
    seed = [params.seed, int(run.subject), int(run.session), sum(run.task.encode())]
    rng = np.random.default_rng(seed)
    progress = progress or tqdm(total=6, disable=True)
    traits = draw_traits(params, run.subject)
    # Head motion first: the BOLD shows it and it moves the EEG's gradient artifact.
    motion_rng = np.random.default_rng([*seed, 0x30])
    motion = head_motion(motion_rng, params.n_volumes, params.motion_scale)
    eeg = simulate_eeg(params, run, rng, traits, motion, progress, workers=workers)
    onset_s = eeg.onsets / params.sfreq
    beats_s = eeg.r_peaks / params.sfreq
    bold = simulate_bold(params, rng, traits, eeg.latents, onset_s, motion, beats_s, grid)
    progress.update(1)
    return _RunData(
        eeg.raw,
        eeg.clean_200,
        eeg.onsets,
        eeg.r_peaks,
        eeg.latents,
        bold.bold,
        bold.truth,
        bold.neural,
        bold.ceiling,
        bold.confounds,
        eeg.stimuli,
        traits.summary(),
        motion,
    )


def _write_run(
    root: Path, params: SimParams, run: SimRun, workers: int = 1, *, grid, progress: bool
) -> dict:
    """Simulate one run, write its files; return its ``simulation.json`` entry.

    With ``workers`` > 1 the EEG recording is written in a thread beside the other files.
    """
    from concurrent.futures import ThreadPoolExecutor

    shape, affine, mask = grid[:3]
    files = run_files(root, run)
    with (
        tqdm(total=7, desc=f"simulate {run.stem}", disable=not progress, leave=False) as bar,
        ThreadPoolExecutor(1) as writer,
    ):
        data = simulate_run(params, run, grid=grid, progress=bar, workers=workers)
        eeg_args = (data.raw, data.onsets, params, run, files, data.stimuli)
        eeg_written = writer.submit(_write_eeg, *eeg_args) if workers > 1 else None
        if eeg_written is None:
            _write_eeg(*eeg_args)
        _write_bold(data.bold, mask, params, run, files, affine)
        if "bold_events" in files:
            d = params.task_design
            first_volume = data.onsets[0] / params.sfreq
            _write_tsv(
                files["bold_events"],
                pd.DataFrame(
                    {
                        "onset": np.round(data.stimuli / params.sfreq - first_volume, 4),
                        "duration": d["duration_s"],
                        "trial_type": d["trial_type"],
                    }
                ),
            )
        _write_tsv(files["confounds"], data.confounds)
        with atomic_path(files["truth_eeg"]) as tmp:
            data.clean_200.save(tmp, verbose=False)
        onset_s = data.r_peaks / params.sfreq
        _write_tsv(
            files["truth_rpeaks"],
            pd.DataFrame(
                {"onset": onset_s, "duration": 0.0, "trial_type": "R", "sample": data.r_peaks}
            ),
        )
        _write_tsv(files["truth_rois"], data.truth)
        _write_tsv(files["neural_rois"], data.neural)
        if eeg_written is not None:
            eeg_written.result()
        for path in files.values():
            logger.info("wrote %s", path)
        bar.update(1)
    entry = {
        "subject": run.subject,
        "session": run.session,
        "task": run.task,
        "inverted_ecg": run.inverted_ecg,
        "n_volumes": params.n_volumes,
        "n_r_peaks": int(data.r_peaks.size),
        **({"n_stimuli": int(data.stimuli.size)} if params.task_design else {}),
        "ceiling": data.ceiling,
        "traits": data.traits,
    }
    del data
    return entry


def simulate_dataset(
    bids_root: str | Path,
    *,
    n_subjects: int = nbconfig.defaults("simulate.n_subjects"),
    duration_s: float = float(nbconfig.defaults("simulate.duration_s")),
    tr: float = nbconfig.defaults("simulate.tr"),
    n_slices: int = nbconfig.defaults("simulate.n_slices"),
    sfreq: float = float(nbconfig.defaults("simulate.sfreq")),
    seed: int = nbconfig.defaults("simulate.seed"),
    n_two_session: int = nbconfig.defaults("simulate.n_two_session"),
    marker: str = nbconfig.defaults("simulate.marker"),
    task: str = nbconfig.defaults("simulate.task"),
    voxel_mm: float = float(nbconfig.defaults("simulate.voxel_mm")),
    progress: bool = True,
    n_jobs: int = 1,
    **options,
) -> Path:
    """Write a simulated BIDS EEG-fMRI dataset with fMRIPrep-style derivatives and ground truth.

    Parameters
    ----------
    bids_root : path-like
        Where to write the dataset. Existing simulated files are overwritten.
    n_subjects : int
        Number of subjects.
    duration_s : float
        Scan duration per run (s); ``duration_s // tr`` volumes are acquired.
    tr : float
        Repetition time (s). ``tr * sfreq`` must be a whole number.
    n_slices : int
        Slices per volume; the gradient artifact repeats every ``tr / n_slices`` s.
    sfreq : float
        EEG sampling rate (Hz).
    seed : int
        Random seed; the dataset is a deterministic function of the parameters.
    n_two_session : int
        How many subjects (the first ones) have a second session.
    marker : str
        Description of the volume markers (written as ``Response`` markers).
    task : str
        BIDS task label.
    voxel_mm : float
        Isotropic voxel size of the (MNI) BOLD grid.
    progress : bool
        Show a progress bar per run.
    n_jobs : int
        Runs simulated in parallel (processes; each holds one run, ~1 GB per 10 min
        at 5 kHz). The dataset does not depend on it.
    **options
        Any other field of :class:`SimParams`, keyword only: ``channels`` (the
        EEG cap, None: :data:`DEFAULT_EEG_CHANNELS`; e.g.
        :data:`SECOND_SITE_EEG_CHANNELS`), ``task_design`` (None: rest; a
        mapping over :data:`TASK_DESIGN_DEFAULTS` writes stimuli, an evoked
        EEG response and a BOLD response, see :class:`SimParams`), the noise
        levels ``noise_v``, ``gradient_peak_v``, ``gradient_jitter_samples``,
        ``bcg_peak_v``, ``motion_scale``, ``thermal_noise`` (a second site is
        expected to differ in them as it does in ``tr``, ``marker``, ``task``
        and the cap), and ``lead_in_s``, ``lead_out_s``, ``n_dummy``,
        ``signal_change``, ``hrf_delay_s``, ``coupling``, ``null_rois``; ``easy``
        (the simple preset of the unit tests; default False: the realistic model of
        ``docs/simulator.md``), ``gradient_clock`` (``"synced"`` or ``"unsynced"``),
        ``slice_gap_s`` (silent gap per TR) and ``line_noise_v`` (50 Hz amplitude).

    Returns
    -------
    bids_root : pathlib.Path
        The dataset root.
    """
    params = SimParams(
        n_subjects=n_subjects,
        n_two_session=n_two_session,
        duration_s=duration_s,
        tr=tr,
        n_slices=n_slices,
        sfreq=sfreq,
        seed=seed,
        marker=marker,
        task=task,
        voxel_mm=voxel_mm,
        **options,
    )
    unknown = (set(params.coupling) - {GLOBAL_SIGNAL} | set(params.null_rois)) - set(
        DIFUMO64_LABELS
    )
    if unknown:
        raise ValueError(f"simulate: ROI names not in the DiFuMo-64 labels: {sorted(unknown)}")
    root = Path(bids_root)
    root.mkdir(parents=True, exist_ok=True)
    done = simulation_json(root)
    if done.exists():
        done.unlink()  # not done until every run is rewritten
    runs = planned_runs(
        n_subjects=n_subjects,
        n_two_session=n_two_session,
        task=task,
        task_design=params.task_design,
    )
    grid = make_grid(params)
    shape, affine, mask = grid[:3]
    _write_static(root, params, runs, grid)
    record = {"runs": {}}
    jobs = max(1, min(int(n_jobs), len(runs)))
    if jobs == 1:
        entries = [_write_run(root, params, run, grid=grid, progress=progress) for run in runs]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        # The runs of the last, incomplete round share the processes that are free by then
        # as threads (5 runs on 2 processes: the fifth run gets 2 threads).
        full = len(runs) - len(runs) % jobs
        workers = [1 if i < full else jobs // (len(runs) - full) for i in range(len(runs))]
        one = partial(_write_run, root, params, grid=grid, progress=False)
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork")) as pool:
            entries = list(pool.map(one, runs, workers))
    for run, entry in zip(runs, entries, strict=True):
        record["runs"][run.stem] = entry
    ceilings = pd.DataFrame([r["ceiling"] for r in record["runs"].values()])
    record = {
        "parameters": asdict(params),
        "seed": params.seed,
        "rhythms": {k: {"freq_hz": v[0], "half_bandwidth_hz": v[1]} for k, v in RHYTHMS.items()},
        "coupled_rois": [k for k in params.coupling],
        "null_rois": list(params.null_rois),
        **(
            {
                "stimuli": {
                    "bold_events": "func/<run>_events.tsv: onset (s from the first volume),"
                    " duration, trial_type",
                    "eeg_marker": _marker_description(params.task_design["stimulus_marker"]),
                    "evoked_electrodes": list(EVOKED_ELECTRODES),
                    "driven_rhythm": params.task_design["rhythm"],
                }
            }
            if params.task_design
            else {}
        ),
        "preset": "easy" if params.easy else "realistic",
        "ceiling_definition": (
            "Pearson R between the pipeline's target and its EEG-coupled part: both are"
            " extracted from the BOLD (least squares on the written atlas maps; the mask"
            " mean for the global signal) - the full BOLD and the BOLD of the EEG-coupled"
            " parts alone - and then, as the fMRI stage does by default, cut to the"
            " steady-state volumes, cleared of the 6 motion parameters and a linear trend"
            " and low-passed at 0.15 Hz. The best R a prediction from the EEG in the"
            f" {WINDOW_S:g} s window before each volume can reach (lag + HRF fit in that"
            " window); neural activity the EEG does not show, physiology, residual motion,"
            " thermal noise and the atlas mismatch all lower it. See docs/simulator.md."
        ),
        "ceiling": ceilings.mean().to_dict(),
        "hrf": (
            f"SPM canonical double gamma (shape {params.hrf_delay_s:g}), cut to {WINDOW_S:g} s"
            if params.easy
            else "double gamma per subject and ROI, peak 4-7 s (see runs.*.traits.hrf)"
        ),
        **record,
        **provenance(asdict(params)),
    }
    write_json(done, record)
    logger.info("simulation complete: %s", done)
    return root
