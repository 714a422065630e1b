"""EEG cleaning on the independent generator (tests/helpers/eeg_generator.py): ours vs MNE's AAS.

MNE's AAS and a FASTR-style reference (x10 upsampling, alignment, AAS, OBS; written from
the published method, :func:`fastr_style`) are each followed by the same R-peak
detection and BCG step (neurobolt's default, ``remove_bcg`` method "aligned"). The
``inner`` figures leave out the first and last 4 volumes, which MNE's AAS does not
correct. One line per figure: ``<scenario> <method> <figure>
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))

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


def fastr_style(x, sfreq, onsets, *, up=10, window=30, n_pc=4, hp=70.0, max_lag=0.5e-3):
    """A FASTR-style reference written from the published method (Niazy et al. 2005).

    Per channel: x10 upsampling, each volume epoch aligned to the first by maximal
    cross-correlation (whole samples at the upsampled rate, i.e. 1/10 sample),
    average artifact subtraction over a sliding window of ``window`` volumes,
    downsampling, then an optimal basis set (``n_pc`` principal components of the
    ``hp``-Hz high-passed residual epochs) fitted and subtracted per volume.
    """
    from scipy import signal as sps

    onsets = np.asarray(onsets, dtype=np.int64)
    length = int(np.median(np.diff(onsets)))
    out = np.array(x, dtype=np.float64, copy=True)
    sos = sps.butter(4, hp, btype="highpass", fs=sfreq, output="sos")
    for c in range(out.shape[0]):
        u = sps.resample_poly(out[c], up, 1)
        on_u = onsets * up
        n_u = length * up
        ref = u[on_u[0] : on_u[0] + n_u]
        lag_max = int(max_lag * sfreq * up)
        ep = np.empty((onsets.size, n_u))
        lags = np.zeros(onsets.size, dtype=int)
        for v, o in enumerate(on_u):
            seg0 = u[o - lag_max : o + n_u + lag_max]
            if seg0.size < n_u + 2 * lag_max:
                seg0 = np.pad(seg0, (0, n_u + 2 * lag_max - seg0.size))
            cc = sps.correlate(seg0, ref, mode="valid", method="fft")
            best_l = int(np.argmax(cc)) - lag_max
            lags[v] = best_l
            s0 = o + best_l
            e = u[s0 : s0 + n_u]
            ep[v, : e.size] = e
            ep[v, e.size :] = 0
        half = window // 2
        for v, o in enumerate(on_u):
            lo = int(np.clip(v - half, 0, max(onsets.size - window, 0)))
            idx = [i for i in range(lo, min(lo + window, onsets.size)) if i != v]
            tmpl = ep[idx].mean(axis=0)
            s0 = o + lags[v]
            stop = min(s0 + n_u, u.size)
            u[s0:stop] -= tmpl[: stop - s0]
        y = sps.resample_poly(u, 1, up)[: out.shape[1]]
        # OBS on the high-passed residual
        h = sps.sosfiltfilt(sos, y)
        eps = np.stack([h[o : o + length] for o in onsets if o + length <= y.size])
        eps = eps - eps.mean(axis=0)
        _u, _s, vt = np.linalg.svd(eps, full_matrices=False)
        comps = vt[:n_pc]
        for o in onsets:
            if o + length <= y.size:
                y[o : o + length] -= (h[o : o + length] @ comps.T) @ comps
        out[c] = y
    return out


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
        inner = (int(on[4]), int(on[-4]))  # MNE's AAS leaves the first and last 4 volumes
        for method in ("neurobolt", "mne_aas+nb_bcg", "fastr_style+nb_bcg"):
            raw = _raw(rec)
            c0, w0 = time.process_time(), time.perf_counter()
            if method == "neurobolt":
                import neurobolt.eeg.stage as stage

                found = {}

                def _capture(ecg, rate, _orig=detect_r_peaks, _found=found):
                    peaks = _orig(ecg, rate)
                    _found["peaks"] = peaks / rate
                    return peaks

                stage.detect_r_peaks = _capture
                clean, qc = clean_raw(
                    raw,
                    config={"channels": rec["ch_names"][:-1]},
                    tr=rec["tr"],
                    slice_timing=rec["slice_timing"],
                    return_qc=True,
                )
                out = clean.get_data()
                stage.detect_r_peaks = detect_r_peaks
                peaks = found.get("peaks")
            else:
                names = rec["ch_names"]
                if method.startswith("mne"):
                    fixed = remove_fmri_gradient_artifact(
                        raw, rec["onsets"], picks=names, tr_tol=2, copy=False, verbose=False
                    ).get_data()
                else:
                    fixed = fastr_style(rec["data"], sf, rec["onsets"])
                out = resample(fixed[:-1], sf, 200.0)
                ecg = resample(fixed[-1], sf, 1000.0, passband=100.0)
                peaks = detect_r_peaks(ecg, 1000.0) / 1000.0
                out = remove_bcg(out, 200.0, np.round(peaks * 200).astype(int))
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            r, e = score(out, truth, 200.0, 0.5, 40.0, span=span)
            r_slow, _ = score(out, truth, 200.0, 0.03, 0.3, span=span)
            print(f"{name}\t{method}\tr_0.5-40\t{r:.3f}")
            print(f"{name}\t{method}\tnrmse_0.5-40\t{e:.3f}")
            print(f"{name}\t{method}\tr_0.03-0.3\t{r_slow:.3f}")
            ri, ei = score(out, truth, 200.0, 0.5, 40.0, span=inner)
            print(f"{name}\t{method}\tinner_r_0.5-40\t{ri:.3f}\tinner_nrmse\t{ei:.3f}")
            if peaks is not None:
                err = np.abs(true_r[:, None] - peaks[None, :]).min(axis=1)
                print(f"{name}\t{method}\trpeaks_within_10ms\t{np.mean(err <= 0.01):.3f}")
            print(f"{name}\t{method}\tcpu_s\t{cpu:.1f}\twall_s\t{wall:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
