"""fMRI statistics of ROI series against the real data's ranges; one figure per line.

Reads every ``*_atlas-DiFuMo_scale-64_timeseries.tsv`` under a results folder (the
``roi_signals`` outputs: motion-regressed, 0.15 Hz low-passed, normalised) and prints, per
scan and as the mean over scans: the lag-1 autocorrelation (mean over the atlas ROIs), the
mean |r| between ROIs and the mean r between each ROI and the global signal, next to the
real resting-state DiFuMo-64 figures (the public NeuroBOLT data, 29 scans, per-scan means:
10th-90th percentile). With ``--simulation`` (a simulated dataset's ``simulation.json``)
it also prints each run's ceilings.

Usage::

    python benchmarks/simulate_realism.py [results] [--simulation data/simulated/derivatives/simulation/simulation.json]
"""  # noqa: E501

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

GLOBAL = "global signal"
#: Real data (10th, 90th percentile of the per-scan means).
REAL = {"lag-1 autocorrelation": (0.77, 0.86), "mean |inter-ROI r|": (0.36, 0.66)}
REAL["mean r(ROI, global signal)"] = (0.59, 0.81)


def scan_statistics(table: pd.DataFrame) -> dict[str, float]:
    """The three statistics of one scan's ROI table (columns: ROIs, then the global signal)."""
    rois = [c for c in table.columns if c != GLOBAL]
    x = table[rois].to_numpy(dtype=float)
    x = x[:, x.std(axis=0) > 0]
    ac = np.mean([np.corrcoef(c[:-1], c[1:])[0, 1] for c in x.T])
    r = np.corrcoef(x.T)
    inter = np.mean(np.abs(r[np.triu_indices_from(r, 1)]))
    gs = table[GLOBAL].to_numpy(dtype=float)
    rg = np.mean([np.corrcoef(c, gs)[0, 1] for c in x.T])
    return dict(zip(REAL, (ac, inter, rg), strict=True))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=Path("results"))
    parser.add_argument("--simulation", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = sorted(args.results.rglob("*_atlas-DiFuMo_scale-64_timeseries.tsv"))
    if not paths:
        raise SystemExit(f"no *_atlas-DiFuMo_scale-64_timeseries.tsv under {args.results}")
    rows = {}
    for path in paths:
        table = pd.read_csv(path, sep="\t").drop(columns=["volume"], errors="ignore")
        rows[path.name.split("_atlas-")[0]] = scan_statistics(table)
    frame = pd.DataFrame(rows).T
    for scan, row in frame.iterrows():
        print(scan + ": " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    for name, (lo, hi) in REAL.items():
        col = frame[name]
        inside = "inside" if lo <= col.mean() <= hi else "OUTSIDE"
        print(
            f"{name}: mean {col.mean():.3f} (scans {col.min():.3f}-{col.max():.3f});"
            f" real 10th-90th percentile {lo:.2f}-{hi:.2f}: {inside}"
        )
    if args.simulation is not None:
        record = json.loads(args.simulation.read_text(encoding="utf-8"))
        for run, entry in record["runs"].items():
            text = ", ".join(f"{k} {v:.2f}" for k, v in entry["ceiling"].items())
            print(f"ceiling {run}: {text}")


if __name__ == "__main__":
    main()
