"""Speed of the simulator on the demo dataset; one figure per line.

Simulates the dataset of ``config/config.yaml``'s ``simulate`` section (the demo: 4
subjects, 5 runs of 12 min at 5 kHz, realistic preset) into a temporary folder, in a
fresh process, and prints its wall-clock time and CPU time (user + system of that process
and its workers). The demo's budget is 2 minutes on a 2-core machine. Runs are simulated
``--jobs`` at a time (2, as the ``simulate`` rule does on 2 cores). ``--old PATH`` also
times another checkout of neurobolt (e.g. ``git worktree add /tmp/old main``) on the same
settings, in alternating fresh processes, so that both see the same load of a shared
machine; its ``simulate_dataset`` is given only the keys it knows. ``--easy`` times the
easy preset too.

Timings on a shared machine move with its load, so two in-run baselines come with them:

* a fixed reference workload (normal draws, inverse FFTs and a polyphase resampling of
  the simulator's kind, one thread, fresh process) timed between the simulations: the
  demo's time divided by it changes little with the machine's speed or load;
* ``--serial``: the same simulation with one job, and the speed-up of ``--jobs`` over it.

The last line compares the demo's wall time with its 2-minute budget (issue 21).

Usage::

    python benchmarks/simulate_speed.py [--config config/config.yaml] [--old PATH]
        [--repeats 1] [--easy] [--serial] [--duration-s S] [--jobs 2]
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
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKER = """
import inspect, json, sys
from neurobolt.simulate import simulate_dataset
opts = json.loads(sys.argv[2])
known = inspect.signature(simulate_dataset).parameters
try:
    from neurobolt.simulate import SimParams
    fields = set(SimParams.__dataclass_fields__)
except ImportError:
    fields = set()
opts = {k: v for k, v in opts.items() if k in known or k in fields}
simulate_dataset(sys.argv[1], progress=False, **opts)
"""
#: A fixed workload of the simulator's kind (one thread): 8 x 2**21 complex normal draws,
#: their inverse FFTs and a 25-fold polyphase down-sampling of 8 x 2**21 samples.
REFERENCE = """
import os
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
import numpy as np
from scipy import fft
from scipy.signal import resample_poly
rng = np.random.default_rng(0)
n = 1 << 21
spec = rng.standard_normal((8, n // 2 + 1), dtype=np.float32) * (1 + 0j)
x = fft.irfft(spec, n=n, axis=-1)
y = resample_poly(x.astype(np.float64), 1, 25, axis=-1)
"""
BUDGET_S = 120.0


def _options(config: Path, duration_s: float | None) -> dict:
    section = yaml.safe_load(config.read_text(encoding="utf-8")).get("simulate", {})
    opts = {k: v for k, v in section.items() if k not in {"enabled", "root"}}
    if duration_s is not None:
        opts["duration_s"] = duration_s
    return opts


def _time(pythonpath: Path | None, opts: dict | None) -> tuple[float, float]:
    """Wall and CPU seconds of one simulation (``opts``; None: the reference workload) in a
    fresh process."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath or REPO))
    with tempfile.TemporaryDirectory(prefix="neurobolt-simspeed-") as tmp:
        cmd = [sys.executable, "-c", WORKER, str(Path(tmp) / "bids"), json.dumps(opts)]
        if opts is None:
            cmd = [sys.executable, "-c", REFERENCE]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--old", type=Path, default=None, help="another neurobolt checkout")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--easy", action="store_true", help="also time the easy preset")
    parser.add_argument("--serial", action="store_true", help="also time one job (baseline)")
    parser.add_argument("--duration-s", type=float, default=None, help="override duration_s")
    parser.add_argument(
        "--jobs", type=int, default=2, help="parallel runs (the simulate rule's threads)"
    )
    args = parser.parse_args(argv)
    opts = _options(args.config, args.duration_s)
    n_runs = opts.get("n_subjects", 4) + opts.get("n_two_session", 1)
    what = f"{n_runs} runs x {opts.get('duration_s', 360):g} s at {opts.get('sfreq', 5000):g} Hz"
    ours = {**opts, "n_jobs": args.jobs}
    main_label = f"this checkout, realistic, {args.jobs} jobs"
    cases = [(main_label, REPO, {**ours, "easy": False})]
    if args.serial:
        cases.append(("this checkout, realistic, 1 job", REPO, {**opts, "easy": False}))
    if args.easy:
        cases.append((f"this checkout, easy, {args.jobs} jobs", REPO, {**ours, "easy": True}))
    if args.old is not None:
        cases.append((f"old ({args.old})", args.old, ours))
    cases.append(("reference workload", None, None))
    results: dict[str, list] = {label: [] for label, *_ in cases}
    for _ in range(args.repeats):
        for label, path, case_opts in cases:
            results[label].append(_time(path, case_opts))
    best = {label: min(t[0] for t in times) for label, times in results.items()}
    reference = best.pop("reference workload")
    print(f"reference workload (1 thread): wall {reference:.2f} s")
    for label, wall in best.items():
        cpu = min(t[1] for t in results[label])
        print(
            f"simulate demo ({what}), {label}: wall {wall:.1f} s, CPU {cpu:.1f} s,"
            f" {wall / reference:.1f} x the reference workload"
        )
    if args.serial:
        serial = best["this checkout, realistic, 1 job"]
        print(f"speed-up of {args.jobs} jobs over 1 job: {serial / best[main_label]:.2f} x")
    if args.old is not None:
        old = best[f"old ({args.old})"]
        print(f"speed-up of this checkout over the old one: {old / best[main_label]:.2f} x")
    verdict = "within" if best[main_label] <= BUDGET_S else "OVER"
    print(
        f"demo simulation, {args.jobs} jobs: {best[main_label]:.1f} s wall, {verdict} the"
        f" {BUDGET_S:g} s budget (on this machine, under its present load)"
    )


if __name__ == "__main__":
    main()
