"""EEG cleaning benchmark: neurobolt vs the standard tools on simulated scans.

Prints one figure per line (``<method> <run> <figure> <value>``), then the
means over runs and the ratios to neurobolt, all measured in this run:

* error against the known clean EEG in 0.5-40 Hz, inside the scan: median
  channel correlation ``r`` and normalised RMSE ``nrmse``;
* residual power at the slice frequency and its first 5 harmonics relative to
  the clean EEG's (``slice_ratio_max``, and one line per harmonic);
* wall time, real-time factor and peak memory of each method, each run in its
  own process.

Methods: ``neurobolt`` (the whole clean_eeg stage), ``mne_aas``
(:func:`mne.preprocessing.remove_fmri_gradient_artifact`, then the same
resampling to 200 Hz; MNE has no BCG removal), ``mne_aas+nb_bcg`` (MNE's AAS
followed by neurobolt's R-peaks and BCG removal, to compare the gradient step
alone), and ``facetpy`` when ``--facet-python`` names a Python that has it
(facetpy pins an older MNE, so it cannot share neurobolt's environment;
otherwise it is skipped with the reason).

``--generator`` adds the independent generator's scenarios (tests/helpers/eeg_generator.py:
gradient from three axes whose mix head motion changes, exact slice times, synchronised and
unsynchronised clocks, a silent gap with amplitude drift, BCG varying per channel and beat,
infraslow EEG): neurobolt, MNE's AAS and a FASTR-style reference, each followed by the same
R-peak detection and BCG step, in 0.5-40 Hz and 0.03-0.3 Hz (``benchmarks/eeg_generator_bench.py``).

``--speed`` adds the 20-minute, 32-channel, 5 kHz scan: wall time, times
faster than real time and peak memory against the recording's float32 size
(``--speed-mne`` runs MNE's AAS on it too; it needs about 6 GB).

Usage::

    python benchmarks/eeg_quality.py                       # the demo's 5 simulated 6-min scans
    python benchmarks/eeg_quality.py --speed               # + the 20-min scan
    python benchmarks/eeg_quality.py --generator           # + the independent generator
    python benchmarks/eeg_quality.py --root /path/to/sim   # an existing simulated dataset
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RUN_GLOB = "sub-*/ses-*/eeg/*_eeg.vhdr"


# ------------------------------------------------------------------------------------------
# Workers (each method runs in its own process so that its peak memory is its own)
# ------------------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it does not inherit the
    parent's size from before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _bold_for(vhdr: Path) -> Path:
    stem = vhdr.name.replace("_eeg.vhdr", "")
    return vhdr.parents[1] / "func" / f"{stem}_bold.nii.gz"


def _worker_neurobolt(vhdr: Path, out: Path) -> dict:
    from neurobolt.jobs.clean_eeg import run as run_clean_eeg

    t0 = time.perf_counter()
    qc = run_clean_eeg(
        {"eeg": vhdr, "bold": _bold_for(vhdr)},
        {"eeg": out, "qc": out.with_name(out.name.replace("_eeg.fif", "_qc.json"))},
        {},
    )
    return {"wall_s": time.perf_counter() - t0, "duration_s": qc["duration_s"]}


def _read_for_mne(vhdr: Path):
    import mne_bids

    from neurobolt import config
    from neurobolt.eeg.markers import volume_onsets
    from neurobolt.jobs.clean_eeg import bold_meta

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mne_bids.read_raw_bids(mne_bids.get_bids_path_from_fname(vhdr), verbose=False)
    meta = bold_meta({"bold": _bold_for(vhdr)})
    cfg = config.section("eeg")
    raw.load_data(verbose=False)
    onsets = volume_onsets(raw, tr=meta["tr"], n_volumes=meta["n_volumes"])
    upper = {n.upper(): n for n in raw.ch_names}
    names = [upper[c] for c in cfg["channels"] if c in upper]
    return raw, onsets, names, cfg


def _worker_mne(vhdr: Path, out: Path, *, with_bcg: bool) -> dict:
    import mne
    from mne.preprocessing import remove_fmri_gradient_artifact

    from neurobolt.eeg.bcg import detect_r_peaks, remove_bcg
    from neurobolt.eeg.clean import resample

    t0 = time.perf_counter()
    raw, onsets, names, cfg = _read_for_mne(vhdr)
    sfreq = raw.info["sfreq"]
    picks = names + (["ECG"] if with_bcg else [])
    fixed = remove_fmri_gradient_artifact(raw, onsets, picks=picks, copy=False, verbose=False)
    data = resample(fixed.get_data(picks=names), sfreq, 200.0)
    if with_bcg:
        ecg = resample(fixed.get_data(picks=["ECG"])[0], sfreq, 1000.0, passband=100.0)
        peaks = np.round(detect_r_peaks(ecg, 1000.0) / 5).astype(int)
        data = remove_bcg(data, 200.0, peaks)
    info = mne.create_info(cfg["channels"][: len(names)], 200.0, "eeg")
    clean = mne.io.RawArray(data, info, verbose=False)
    wall = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean.save(out, overwrite=True, verbose=False)
    return {"wall_s": wall, "duration_s": raw.n_times / sfreq}


def _worker(args) -> None:
    vhdr, out = Path(args.vhdr), Path(args.out)
    if args.worker == "neurobolt":
        res = _worker_neurobolt(vhdr, out)
    elif args.worker == "mne_aas":
        res = _worker_mne(vhdr, out, with_bcg=False)
    elif args.worker == "mne_aas+nb_bcg":
        res = _worker_mne(vhdr, out, with_bcg=True)
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    res["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(res))


_FACET_WORKER = r"""
import json, resource, sys, time
import mne
from facet import Pipeline, Loader, TriggerDetector, UpSample, AASCorrection, DownSample
vhdr, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
raw = mne.io.read_raw_brainvision(vhdr, preload=True, verbose=False)
fif = out.replace("_eeg.fif", "_input_raw.fif")
raw.save(fif, overwrite=True)
pipe = Pipeline([Loader(path=fif, preload=True), TriggerDetector(regex=r"R128"),
                 UpSample(factor=10), AASCorrection(window_size=30), DownSample(factor=10)])
result = pipe.run()
res_raw = getattr(result, "raw", None) or result.context.get_raw()
res_raw.resample(200.0).save(out, overwrite=True)
print(json.dumps({"wall_s": time.perf_counter() - t0, "duration_s": raw.times[-1],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run_worker(method: str, vhdr: Path, out: Path, *, facet_python: str | None = None) -> dict:
    if method == "facetpy":
        script = out.with_name("facet_worker.py")
        script.write_text(_FACET_WORKER, encoding="utf-8")
        cmd = [facet_python, str(script), str(vhdr), str(out)]
    else:
        cmd = [sys.executable, __file__, "--worker", method, "--vhdr", str(vhdr), "--out", str(out)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------
# Evaluation against the ground truth
# ------------------------------------------------------------------------------------------


def evaluate(est_fif: Path, truth_fif: Path, onsets_s, tr: float, n_slices: int) -> dict:
    """Error of a cleaned 200 Hz recording against the true clean EEG (0.5-40 Hz, in scan)."""
    import mne
    from scipy import signal as sps

    est = mne.io.read_raw_fif(est_fif, preload=True, verbose=False)
    truth = mne.io.read_raw_fif(truth_fif, preload=True, verbose=False)
    names = [n for n in est.ch_names if n.upper() in {t.upper() for t in truth.ch_names}]
    upper = {t.upper(): t for t in truth.ch_names}
    e = est.get_data(picks=names)
    t = truth.get_data(picks=[upper[n.upper()] for n in names])
    n = min(e.shape[1], t.shape[1])
    e, t = e[:, :n], t[:, :n]
    fs = 200.0
    span = slice(int((onsets_s[0] + 2.0) * fs), int((onsets_s[-1] + tr - 2.0) * fs))
    sos = sps.butter(4, [0.5, 40.0], btype="bandpass", fs=fs, output="sos")
    eb, tb = sps.sosfiltfilt(sos, e)[:, span], sps.sosfiltfilt(sos, t)[:, span]
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(eb, tb, strict=True)])
    nrmse = np.sqrt(((eb - tb) ** 2).mean(axis=1) / (tb**2).mean(axis=1))
    # The same without the first and last 5 volumes (MNE leaves 4 at each end uncorrected).
    inner = slice(int((onsets_s[5] - onsets_s[0]) * fs), int((onsets_s[-5] - onsets_s[0]) * fs))
    ei, ti = eb[:, inner], tb[:, inner]
    r_in = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(ei, ti, strict=True)])
    nrmse_in = np.sqrt(((ei - ti) ** 2).mean(axis=1) / (ti**2).mean(axis=1))
    f, pe = sps.welch(e[:, span], fs, nperseg=int(8 * fs))
    _, pt = sps.welch(t[:, span], fs, nperseg=int(8 * fs))
    f0 = n_slices / tr
    ratios = []
    for h in range(1, 7):
        m = np.abs(f - h * f0) <= 0.25
        ratios.append(float(np.median(pe[:, m].sum(axis=1) / pt[:, m].sum(axis=1))))
    return {
        "r": float(np.median(r)),
        "r_min": float(r.min()),
        "nrmse": float(np.median(nrmse)),
        "nrmse_max": float(nrmse.max()),
        "r_interior": float(np.median(r_in)),
        "nrmse_interior": float(np.median(nrmse_in)),
        "slice_ratios": ratios,
        "slice_ratio_max": max(ratios),
    }


def _simulate(
    root: Path,
    *,
    n_subjects: int,
    duration: float,
    seed: int,
    n_two_session: int = 0,
    options: dict | None = None,
) -> Path:
    from neurobolt.simulate import simulate_dataset, simulation_json

    if simulation_json(root).exists():
        return root
    print(f"# simulating {n_subjects} x {duration:g} s into {root} {options or ''}", flush=True)
    simulate_dataset(
        root,
        n_subjects=n_subjects,
        n_two_session=n_two_session,
        duration_s=duration,
        seed=seed,
        progress=False,
        **(options or {}),
    )
    return root


def _runs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(RUN_GLOB) if "derivatives" not in p.relative_to(root).parts)


def _truth_and_timing(root: Path, vhdr: Path):
    import mne_bids

    stem = vhdr.name.replace("_eeg.vhdr", "")
    rel = vhdr.parent.relative_to(root)
    truth = root / "derivatives" / "simulation" / rel / f"{stem}_desc-clean_eeg.fif"
    bold_json = json.loads(_bold_for(vhdr).with_suffix("").with_suffix(".json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mne_bids.read_raw_bids(mne_bids.get_bids_path_from_fname(vhdr), verbose=False)
    from neurobolt.eeg.markers import find_volume_markers

    onsets_s = find_volume_markers(raw) / raw.info["sfreq"]
    return truth, onsets_s, float(bold_json["RepetitionTime"]), len(bold_json["SliceTiming"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--root", type=Path, help="an existing simulated dataset")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "neurobolt-bench")
    p.add_argument("--n-subjects", type=int, default=4)
    p.add_argument("--n-two-session", type=int, default=1)
    p.add_argument("--duration", type=float, default=360.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--sim",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="simulator option (e.g. gradient_jitter_samples=0), repeatable",
    )
    p.add_argument("--methods", default="neurobolt,mne_aas,mne_aas+nb_bcg")
    p.add_argument("--facet-python", help="a Python interpreter that has facetpy 2.x")
    p.add_argument("--speed", action="store_true", help="also clean a 20-min 32-ch scan")
    p.add_argument(
        "--generator",
        action="store_true",
        help="also run the independent generator's scenarios (eeg_generator_bench.py)",
    )
    p.add_argument("--speed-duration", type=float, default=1200.0)
    p.add_argument("--speed-mne", action="store_true", help="run MNE's AAS on it too (~6 GB)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--vhdr", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0

    args.workdir.mkdir(parents=True, exist_ok=True)
    options = {k: float(v) for k, v in (item.split("=", 1) for item in args.sim)}
    tag = "".join(f"-{k}{v:g}" for k, v in sorted(options.items()))
    root = args.root or _simulate(
        args.workdir
        / f"quality-{args.n_subjects}+{args.n_two_session}x{args.duration:g}s-seed{args.seed}{tag}",
        n_subjects=args.n_subjects,
        n_two_session=args.n_two_session,
        duration=args.duration,
        seed=args.seed,
        options=options,
    )
    methods = [m for m in args.methods.split(",") if m]
    if args.facet_python:
        methods.append("facetpy")
    else:
        print(
            "facetpy skipped: no --facet-python given (facetpy pins an older MNE, so it needs"
            " its own environment: python -m venv /tmp/facet && /tmp/facet/bin/pip install"
            " facetpy, then pass --facet-python /tmp/facet/bin/python)"
        )
    results: dict[str, list[dict]] = {m: [] for m in methods}
    out_dir = args.workdir / "outputs"
    out_dir.mkdir(exist_ok=True)
    for vhdr in _runs(root):
        run = vhdr.name.replace("_eeg.vhdr", "")
        truth, onsets_s, tr, n_slices = _truth_and_timing(root, vhdr)
        for m in methods:
            out = out_dir / f"{root.name}_{run}_method-{m.replace('+', '')}_eeg.fif"
            res = _run_worker(m, vhdr, out, facet_python=args.facet_python)
            if "error" in res:
                print(f"{m} {run} skipped: {res['error']}")
                continue
            res.update(evaluate(out, truth, onsets_s, tr, n_slices))
            res["realtime"] = res["duration_s"] / res["wall_s"]
            results[m].append(res)
            keys = ("r", "nrmse", "r_min", "nrmse_max", "r_interior", "nrmse_interior")
            for key in (*keys, "slice_ratio_max", "wall_s"):
                print(f"{m} {run} {key} {res[key]:.4f}")
            print(f"{m} {run} realtime_x {res['realtime']:.1f}")
            print(f"{m} {run} peak_rss_mb {res['peak_rss_mb']:.0f}")
            for h, v in enumerate(res["slice_ratios"], start=1):
                print(f"{m} {run} slice_ratio_h{h} {v:.3f}")

    print("# means over runs")
    means = {}
    for m, rows in results.items():
        if not rows:
            continue
        keys = ("r", "nrmse", "r_interior", "nrmse_interior", "wall_s")
        means[m] = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        means[m]["slice_ratio_max"] = float(max(r["slice_ratio_max"] for r in rows))
        for k, v in means[m].items():
            print(f"{m} mean {k} {v:.4f}")
    if "neurobolt" in means:
        nb = means["neurobolt"]
        for m, v in means.items():
            if m == "neurobolt":
                continue
            print(f"ratio {m}/neurobolt nrmse {v['nrmse'] / nb['nrmse']:.2f}")
            print(
                f"ratio {m}/neurobolt nrmse_interior"
                f" {v['nrmse_interior'] / nb['nrmse_interior']:.2f}"
            )
            print(f"ratio {m}/neurobolt wall {v['wall_s'] / nb['wall_s']:.2f}")

    if args.speed:
        speed_root = _simulate(
            args.workdir / f"speed-{args.speed_duration:g}s",
            n_subjects=1,
            duration=args.speed_duration,
            seed=args.seed + 1,
        )
        vhdr = _runs(speed_root)[0]
        fields = {}
        for line in vhdr.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k.strip()] = v.strip()
        n_ch = int(fields["NumberOfChannels"])
        sfreq = 1e6 / float(fields["SamplingInterval"])
        speed_methods = ["neurobolt"] + (["mne_aas"] if args.speed_mne else [])
        walls = {}
        for m in speed_methods:
            out = out_dir / f"speed_method-{m}_eeg.fif"
            res = _run_worker(m, vhdr, out)
            if "error" in res:
                print(f"speed {m} skipped: {res['error']}")
                continue
            n_times = res["duration_s"] * sfreq
            f32_mb = n_ch * n_times * 4 / 2**20
            walls[m] = res["wall_s"]
            print(f"speed {m} duration_s {res['duration_s']:.0f}")
            print(f"speed {m} channels {n_ch}")
            print(f"speed {m} wall_s {res['wall_s']:.1f}")
            print(f"speed {m} realtime_x {res['duration_s'] / res['wall_s']:.1f}")
            print(f"speed {m} peak_rss_mb {res['peak_rss_mb']:.0f}")
            print(f"speed {m} float32_size_mb {f32_mb:.0f}")
            print(f"speed {m} peak_rss_over_float32 {res['peak_rss_mb'] / f32_mb:.2f}")
        if "neurobolt" in walls and "mne_aas" in walls:
            print(f"speed ratio mne_aas/neurobolt wall {walls['mne_aas'] / walls['neurobolt']:.2f}")
    if args.generator:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import eeg_generator_bench

        print("# independent generator: scenario, method, figure, value")
        eeg_generator_bench.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
