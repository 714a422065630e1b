"""EEG cleaning on the independent generator (tests/eeg_generator.py): ours vs MNE's AAS.

Both followed by the same R-peak detection and BCG step (neurobolt's default,
``remove_bcg`` method "aligned"). One line per figure: ``<scenario> <method> <figure>
<value>``: r and NRMSE against the clean EEG in 0.5-40 Hz, r in 0.03-0.3 Hz (median
over channels, inside the scan), R-peaks within 10 ms, CPU and wall seconds.

Usage::

    python benchmarks/eeg_generator_bench.py [--duration 120] [--channels 8]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SCENARIOS = {
    "sync+motion": dict(protocol="continuous", sync=True, motion=True),
    "unsync+motion": dict(protocol="continuous", sync=False, motion=True),
    "gap+drift sync": dict(protocol="gap", sync=True, motion=True),
    "gap+drift unsync": dict(protocol="gap", sync=False, motion=True),
}


def _raw(rec):
    import mne

    kinds = ["eeg"] * (len(rec["ch_names"]) - 1) + ["ecg"]
    info = mne.create_info(rec["ch_names"], rec["sfreq"], kinds)
    raw = mne.io.RawArray(rec["data"], info, verbose=False)
    raw.set_annotations(mne.Annotations(rec["onsets"] / rec["sfreq"], 0.0, "Response/R128"))
    return raw


def main(argv=None) -> int:
    from eeg_generator import make_recording, score
    from mne.preprocessing import remove_fmri_gradient_artifact

    from neurobolt.eeg.bcg import detect_r_peaks, remove_bcg
    from neurobolt.eeg.clean import clean_raw, resample

    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    for name, kw in SCENARIOS.items():
        rec = make_recording(duration=args.duration, n_channels=args.channels, seed=args.seed, **kw)
        sf = rec["sfreq"]
        truth = resample(rec["truth"], sf, 200.0)
        on = rec["onsets"] / sf * 200
        span = (int(on[0]), int(on[-1] + rec["tr"] * 200))
        true_r = rec["r_peaks"] / sf
        for method in ("neurobolt", "mne_aas+nb_bcg"):
            raw = _raw(rec)
            c0, w0 = time.process_time(), time.perf_counter()
            if method == "neurobolt":
                clean, qc = clean_raw(
                    raw,
                    config={"channels": rec["ch_names"][:-1]},
                    tr=rec["tr"],
                    slice_timing=rec["slice_timing"],
                    return_qc=True,
                )
                out = clean.get_data()
                peaks = None
            else:
                names = rec["ch_names"]
                fixed = remove_fmri_gradient_artifact(
                    raw, rec["onsets"], picks=names, tr_tol=2, copy=False, verbose=False
                )
                out = resample(fixed.get_data(picks=names[:-1]), sf, 200.0)
                ecg = resample(fixed.get_data(picks=["ECG"])[0], sf, 1000.0, passband=100.0)
                peaks = detect_r_peaks(ecg, 1000.0) / 1000.0
                out = remove_bcg(out, 200.0, np.round(peaks * 200).astype(int))
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            r, e = score(out, truth, 200.0, 0.5, 40.0, span=span)
            r_slow, _ = score(out, truth, 200.0, 0.03, 0.3, span=span)
            print(f"{name}\t{method}\tr_0.5-40\t{r:.3f}")
            print(f"{name}\t{method}\tnrmse_0.5-40\t{e:.3f}")
            print(f"{name}\t{method}\tr_0.03-0.3\t{r_slow:.3f}")
            if peaks is not None:
                err = np.abs(true_r[:, None] - peaks[None, :]).min(axis=1)
                print(f"{name}\t{method}\trpeaks_within_10ms\t{np.mean(err <= 0.01):.3f}")
            print(f"{name}\t{method}\tcpu_s\t{cpu:.1f}\twall_s\t{wall:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
