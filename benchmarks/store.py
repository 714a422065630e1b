"""Window store: size on disk and random-access read throughput, against baselines in one run.

Prints one figure per line. A 20-min, 26-channel, 200 Hz run (TR 2.1 s, 571 volumes) is
written uncompressed, with lzf and with gzip; then random windows are read through the
torch Dataset with 0, 1 and 2 DataLoader workers and, as the baseline, sliced from an
in-memory array with the same scaling.

    python benchmarks/store.py [--minutes 20] [--windows 4000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from neurobolt import store as st

SFREQ, TR, WINDOW_S = 200.0, 2.1, 16.0


class _RandomRows(Sampler):
    def __init__(self, n, count, seed=0):
        self.rows = np.random.default_rng(seed).integers(0, n, count).tolist()

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)


def _make(path: Path, minutes: float, compression):
    rng = np.random.default_rng(0)
    n_vol = int(minutes * 60 // TR)
    first = int(10 * SFREQ)
    markers = first + int(TR * SFREQ) * np.arange(n_vol)
    n_times = int(markers[-1] + 5 * SFREQ)
    # EEG-like: 1/f-ish noise quantised as a real 200 Hz cleaned recording would be.
    eeg = np.cumsum(rng.normal(0, 2e-6, (26, n_times)), axis=1).astype(np.float32)
    eeg -= np.linspace(0, 1, n_times, dtype=np.float32) * eeg[:, -1:]
    align = st.align_volumes(
        markers,
        n_times=n_times,
        sfreq=SFREQ,
        n_bold_volumes=n_vol,
        kept_volumes=np.arange(n_vol),
        tr=TR,
        window_s=WINDOW_S,
    )
    targets = rng.normal(size=(n_vol, 7)).astype(np.float32)
    t0 = time.perf_counter()
    st.write_store(
        path,
        eeg=eeg,
        sfreq=SFREQ,
        alignment=align,
        targets=targets,
        ch_names=[f"C{i}" for i in range(26)],
        roi_names=[f"R{i}" for i in range(7)],
        tr=TR,
        window_s=WINDOW_S,
        compression=compression,
    )
    return eeg, align, targets, time.perf_counter() - t0


def _rate(loader, count):
    t0 = time.perf_counter()
    n = sum(x.shape[0] for x, _ in loader)
    assert n == count
    return n / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--windows", type=int, default=4000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for comp in (None, "lzf", "gzip"):
            path = Path(tmp) / f"{comp or 'none'}_windows.h5"
            eeg, align, targets, dt = _make(path, args.minutes, comp)
            paths[comp] = path
            base = eeg.nbytes + targets.nbytes
            print(
                f"store_size_ratio_{comp or 'none'}: {os.path.getsize(path) / base:.3f}"
                " x continuous float32 EEG + targets"
            )
            print(f"write_seconds_{comp or 'none'}: {dt:.2f}")
        copied = align.valid.sum() * eeg.shape[0] * int(WINDOW_S * SFREQ) * 4 + targets.nbytes
        print(
            f"window_copy_design_ratio: {copied / base:.2f} x (one copy per window, for reference)"
        )

        # Baseline: the same windows sliced from an in-memory array, same scaling.
        valid = np.flatnonzero(align.valid)
        rows = np.random.default_rng(0).choice(valid, args.windows)
        w = int(WINDOW_S * SFREQ)
        t0 = time.perf_counter()
        for r in rows:
            st.scale_window(eeg[:, align.onsets[r] - w : align.onsets[r]], sfreq=SFREQ)
        memory_rate = args.windows / (time.perf_counter() - t0)
        print(f"in_memory_windows_per_s: {memory_rate:.0f}")
        for comp, path in paths.items():
            ds = st.WindowDataset([path])
            for workers in (0, 1, 2):
                loader = DataLoader(
                    ds,
                    batch_size=16,
                    num_workers=workers,
                    sampler=_RandomRows(len(ds), args.windows),
                    persistent_workers=False,
                )
                rate = _rate(loader, args.windows)
                print(
                    f"store_{comp or 'none'}_workers{workers}_windows_per_s: {rate:.0f}"
                    f" ({rate / memory_rate:.2f} x in-memory)"
                )


if __name__ == "__main__":
    main()
