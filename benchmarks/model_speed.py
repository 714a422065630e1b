"""Speed of the NeuroBOLT models; one figure per line.

Measures, for the ``paper`` preset (26 channels x 16 s x 200 Hz, fp32, AdamW, MSE):
training windows/s (forward + backward + AdamW step, batch 16; ours with the parameter
groups and the deterministic settings of ``neurobolt.train``), inference windows/s (eval, no
grad, batch 64), the LaBraM / spectral share of a forward + backward, parameter counts and
peak memory; the same for ``tiny``, with the before/after CPU-time ratio of the spectral
branch's STFT magnitudes (complex ``abs`` before, ``hypot`` of the parts now: equal bit for
bit). When a checkout of the public NeuroBOLT implementation
is given (``--reference PATH`` or ``NEUROBOLT_REFERENCE=PATH``; its dependencies timm,
einops and linear_attention_transformer must be importable, e.g. through PYTHONPATH) the
reference is measured side by side and the median of the paired ratios is printed. With
``--device cuda`` our training is also measured on the GPU at batch 16 and 64 in fp32 and
bf16 (``--repeats 0`` skips the CPU comparison).

Each paper-preset CPU measurement runs in a fresh process of its own, as a training job
does: one implementation on ``--threads`` threads (``neurobolt.train.limit_threads``), two
warm-up steps, then ``--steps`` timed steps. The two implementations' processes alternate
(ours, reference, reference, ours, ...), so that both see the same load of a shared machine,
and each repeat's ratio compares adjacent processes; each pair has a seed of its own, so
that ours' time (it skips the samples that stochastic depth drops) is averaged over draws.
(In one shared process each model would run on a heap shaped by the other; the reference
alone faults in about 5 GB of fresh pages a step.) Beside the wall-clock figures, the process's
CPU time (user + system, all threads, the kernel's page faults included) gives a second
ratio that depends less on what else runs; with several threads it also counts OpenMP
threads spinning at barriers, so it is cleanest with ``--threads 1``. The tiny and GPU
figures are measured in the parent process.

Usage::

    python benchmarks/model_speed.py [--reference PATH] [--repeats 5] [--steps 3]
        [--threads 2] [--device cpu|cuda] [--no-tiny]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from neurobolt.models import build_model
from neurobolt.models.spectral import SpectralConfig, multiscale_spectra

CHANNELS = (
    "FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 FPZ FZ CZ PZ POZ OZ FT9 FT10 TP9 TP10"
).split()
N_PATCHES = 16
TRAIN_BATCH, INFER_BATCH = 16, 64
# Untimed steps first: our process still faults in ~0.8 GB of new pages in its second
# step and settles after it; the reference faults in ~5 GB every step.
WARMUP_STEPS = 2
RESULT_MARK = "MODEL_SPEED_RESULT "  # a worker's last line: this mark + a JSON object


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(batch: int, device: torch.device, n_outputs: int = 1):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, len(CHANNELS), N_PATCHES, 200, generator=gen).to(device)
    y = torch.randn(batch, n_outputs, generator=gen).to(device)
    return x, y


def _cpu_seconds() -> tuple[float, int]:
    """CPU seconds (user + system, all threads) of this process, and its minor faults."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_minflt


def timed(fn, device: torch.device) -> dict:
    """Run ``fn()``; wall seconds, process CPU seconds and minor page faults it took."""
    _sync(device)
    cpu0, faults0 = _cpu_seconds()
    start = time.perf_counter()
    fn()
    _sync(device)
    wall = time.perf_counter() - start
    cpu1, faults1 = _cpu_seconds()
    return {"wall": wall, "cpu": cpu1 - cpu0, "faults": faults1 - faults0}


class Runner:
    """One model + optimizer; ``train_step``/``infer``/``branch_times`` on given batches."""

    def __init__(self, model, call, branches, device, *, bf16=False, groups=None, settings=None):
        self.model = model.to(device)
        self.call = call  # (model, x) -> output
        self.branches = branches  # name -> (model, x) -> features
        self.device = device
        self.bf16 = bf16
        # context in which steps run (ours: the settings of neurobolt.train's fit)
        self.settings = settings or contextlib.nullcontext
        params = self.model.parameters() if groups is None else groups
        self.opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.05)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, x, y) -> None:
        self.model.train()
        with self.settings():
            with self._autocast():
                out = self.call(self.model, x)
            loss = F.mse_loss(out.float(), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def infer(self, x) -> None:
        self.model.eval()
        with self.settings(), torch.no_grad(), self._autocast():
            self.call(self.model, x)

    def train_rate(self, x, y, steps: int) -> float:
        """Windows/s over ``steps`` training steps (wall clock)."""

        def run():
            for _ in range(steps):
                self.train_step(x, y)

        return steps * x.shape[0] / timed(run, self.device)["wall"]

    def branch_times(self, x) -> dict[str, float]:
        """CPU seconds of forward + backward of each branch alone (train mode)."""
        self.model.train()
        times = {}
        for name, fn in self.branches.items():

            def step(fn=fn):
                with self.settings():
                    with self._autocast():
                        feats = fn(self.model, x)
                    feats.float().square().mean().backward()

            times[name] = timed(step, self.device)["cpu"]
            self.model.zero_grad(set_to_none=True)
        return times


def ours(preset: str, device, *, bf16=False, seed: int = 0) -> Runner:
    """Our model as ``neurobolt.train`` trains it: seeded, deterministic algorithms (without
    the NaN fill of new tensors), AdamW parameter groups (no decay on norms, biases and
    embeddings; layer-wise lr decay 0.65)."""
    from neurobolt.train import _uninitialized_memory_unfilled, param_groups, seed_everything

    seed_everything(seed)
    model = build_model("neurobolt", preset=preset, n_patches=N_PATCHES)
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.65)
    for group in groups:
        group["lr"] = 3e-4 * group["lr_scale"]
    return Runner(
        model,
        lambda m, x: m(x, CHANNELS),
        {
            "labram": lambda m, x: m.labram.forward_features(x, CHANNELS),
            "spectral": lambda m, x: m.spectral.forward_features(x, CHANNELS),
        },
        device,
        bf16=bf16,
        groups=groups,
        settings=_uninitialized_memory_unfilled,
    )


def reference(path: str, device, *, seed: int = 0) -> Runner:
    """The public NeuroBOLT model (``models/model.py`` of a checkout) in the paper setup."""
    import warnings

    # The checkout's ``models/`` has no __init__.py, so this file's folder would shadow it:
    # put the checkout first and drop this file's folder while importing.
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [os.path.abspath(path)] + [p for p in saved if os.path.abspath(p or ".") != here]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from models.model import neurobolt_default
    warnings.filterwarnings("ignore", message="A window was not provided")  # its torch.stft
    sys.path[:] = saved

    from neurobolt.models.labram import channel_indices

    input_chans = [0] + [i + 1 for i in channel_indices(CHANNELS)]
    torch.manual_seed(seed)
    model = neurobolt_default(
        EEG_channel=len(CHANNELS),
        num_roi=1,
        drop_rate=0.1,
        drop_path_rate=0.1,
        attn_drop_rate=0.0,
        init_values=0.1,
        qkv_bias=False,
        use_mean_pooling=True,
        init_scale=0.001,
    )
    return Runner(
        model,
        lambda m, x: m(x, input_chans=input_chans),
        {
            "labram": lambda m, x: m.forward_ts_features(x, input_chans=input_chans),
            "spectral": lambda m, x: m.mss_module(x.flatten(2)),
        },
        device,
    )


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _peak_rss_gib() -> float:
    """This process's peak resident memory in GiB (VmHWM; ru_maxrss, the fallback, may
    carry the parent's peak across fork/exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def worker(which: str, reference_path: str | None, steps: int, seed: int) -> dict:
    """One implementation in this (fresh) process: parameter counts, two warm-up steps, then
    ``steps`` timed training steps (batch 16), peak memory so far, two inference passes
    (batch 64; the second timed) and the branch split of a forward + backward."""
    device = torch.device("cpu")
    if which == "ours":
        runner = ours("paper", device, seed=seed)
        model = runner.model
        params = [n_params(model.labram), n_params(model.spectral), n_params(model.head)]
    else:
        runner = reference(reference_path, device, seed=seed)
        spectral, head = n_params(runner.model.mss_module), n_params(runner.model.head)
        params = [n_params(runner.model) - spectral - head, spectral, head]
    x, y = _batch(TRAIN_BATCH, device)
    for _ in range(WARMUP_STEPS):  # first-touch memory, one-time set-up
        runner.train_step(x, y)
    train = [timed(lambda: runner.train_step(x, y), device) for _ in range(steps)]
    peak = _peak_rss_gib()
    x_infer, _ = _batch(INFER_BATCH, device)
    runner.infer(x_infer)
    infer = timed(lambda: runner.infer(x_infer), device)
    runner.branch_times(x)
    branch = runner.branch_times(x)
    return {
        "params": params,
        "train_wall": [t["wall"] for t in train],
        "train_cpu": [t["cpu"] for t in train],
        "train_faults": [t["faults"] for t in train],
        "peak_rss_gib": peak,
        "infer_wall": infer["wall"],
        "labram_share": branch["labram"] / (branch["labram"] + branch["spectral"]),
    }


def run_worker(which: str, args, seed: int) -> dict:
    """:func:`worker` in a fresh Python process with ``args.threads`` threads."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", which]
    cmd += ["--threads", str(args.threads), "--steps", str(args.steps), "--seed", str(seed)]
    if args.reference:
        cmd += ["--reference", args.reference]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.worker_timeout)
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(
            f"the {which} worker took longer than {args.worker_timeout} s (--worker-timeout)"
        ) from err
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if out.returncode or not lines:
        raise RuntimeError(
            f"the {which} worker failed (exit {out.returncode}):\n{out.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(RESULT_MARK) :])


def emit(name: str, value, unit: str = "") -> None:
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}{(' ' + unit) if unit else ''}", flush=True)


def _rates(result: dict) -> tuple[float, float]:
    """Training windows/s of one worker: by wall clock and by CPU time (medians of steps)."""
    med = statistics.median
    return TRAIN_BATCH / med(result["train_wall"]), TRAIN_BATCH / med(result["train_cpu"])


def compare_on_cpu(args) -> None:
    """Paper preset on the CPU, each implementation in its own processes, alternating."""
    names = ["ours"] + (["reference"] if args.reference else [])
    results = {name: [] for name in names}
    for rep in range(args.repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            results[name].append(run_worker(name, args, seed=rep))

    med = statistics.median
    for name in names:
        prefix = "" if name == "ours" else "reference_"
        runs = results[name]
        labram, spectral, head = runs[0]["params"]
        emit(f"{prefix}params_labram", labram)
        emit(f"{prefix}params_spectral", spectral)
        emit(f"{prefix}params_head", head)
        wall = [_rates(r)[0] for r in runs]
        cpu = [_rates(r)[1] for r in runs]
        emit(f"{prefix}train_windows_per_s", med(wall), "windows/s (paper, batch 16, fp32)")
        emit(f"{prefix}train_windows_per_s_best", max(wall), "windows/s (best process)")
        emit(f"{prefix}train_windows_per_cpu_s", med(cpu), "windows per CPU second")
        faults = med(f for r in runs for f in r["train_faults"])
        emit(f"{prefix}train_page_faults", faults, "minor page faults a step")
        infer = med(INFER_BATCH / r["infer_wall"] for r in runs)
        emit(f"{prefix}infer_windows_per_s", infer, "windows/s (paper, batch 64, no grad)")
        share = med(r["labram_share"] for r in runs)
        emit(f"{prefix}labram_share", share, "of branch forward+backward CPU time")
        emit(f"{prefix}spectral_share", 1 - share, "of branch forward+backward CPU time")
        emit(f"{prefix}peak_rss", max(r["peak_rss_gib"] for r in runs), "GiB (training)")
    if args.reference:
        pairs = list(zip(results["ours"], results["reference"], strict=True))
        n = len(pairs)
        ratios = [_rates(a)[0] / _rates(b)[0] for a, b in pairs]
        emit("train_speedup_vs_reference", med(ratios), f"x (median of {n} paired processes)")
        emit("train_speedup_range", f"{min(ratios):.2f}-{max(ratios):.2f}")
        emit("train_speedup_per_repeat", " ".join(f"{r:.2f}" for r in ratios))
        cpu_ratios = [_rates(a)[1] / _rates(b)[1] for a, b in pairs]
        emit("train_speedup_cpu_time", med(cpu_ratios), "x (windows per CPU second)")
        emit("train_speedup_cpu_time_range", f"{min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}")
        ratios = [b["infer_wall"] / a["infer_wall"] for a, b in pairs]
        emit("infer_speedup_vs_reference", med(ratios), f"x (median of {n} paired processes)")


def gpu_figures(device) -> None:
    """Training windows/s of the paper preset at batch 16 and 64, fp32 and bf16."""
    med = statistics.median
    for bf16 in (False, True):
        runner = ours("paper", device, bf16=bf16)
        for batch in (16, 64):
            x, y = _batch(batch, device)
            runner.train_step(x, y)
            torch.cuda.reset_peak_memory_stats(device)
            rate = med([runner.train_rate(x, y, 5) for _ in range(3)])
            tag = f"{'bf16' if bf16 else 'fp32'}_batch{batch}"
            emit(f"gpu_train_windows_per_s_{tag}", rate, "windows/s")
            peak = torch.cuda.max_memory_allocated(device) / 2**30
            emit(f"gpu_peak_memory_{tag}", peak, "GiB")


def tiny_figures(device) -> None:
    """The tiny preset (demo and tests) in this process."""
    med = statistics.median
    tiny = ours("tiny", device)
    emit("tiny_params", n_params(tiny.model))
    x, y = _batch(TRAIN_BATCH, device)
    x_infer, _ = _batch(INFER_BATCH, device)
    tiny.train_step(x, y)
    emit("tiny_train_windows_per_s", med([tiny.train_rate(x, y, 3) for _ in range(3)]))
    tiny.infer(x_infer)
    infer = [INFER_BATCH / timed(lambda: tiny.infer(x_infer), device)["wall"] for _ in range(3)]
    emit("tiny_infer_windows_per_s", med(infer))
    spectra_before_after(x, device)


def spectra_before_after(x, device, repeats: int = 7) -> None:
    """The spectral branch's STFT magnitudes of one training batch: the complex ``abs``
    (before) vs ``multiscale_spectra``'s hypot of the real and imaginary parts (now; equal
    bit for bit), alternating, and the median of the paired CPU-time ratios."""
    n_fft = SpectralConfig().n_fft
    signals = x.reshape(x.shape[0], x.shape[1], -1)

    def before():
        for n in n_fft:
            frames = signals[..., : signals.shape[-1] // n * n].reshape(*signals.shape[:2], -1, n)
            torch.fft.rfft(frames, dim=-1).abs()

    def after():
        multiscale_spectra(signals, n_fft)

    before(), after()
    ratios = []
    for _ in range(repeats):
        t_before = sum(timed(before, device)["cpu"] for _ in range(3))
        t_after = sum(timed(after, device)["cpu"] for _ in range(3))
        ratios.append(t_before / t_after)
    emit("tiny_spectra_abs_over_hypot_cpu_ratio", statistics.median(ratios))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", default=os.environ.get("NEUROBOLT_REFERENCE"))
    parser.add_argument("--repeats", type=int, default=5, help="processes per implementation")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps a process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-tiny", action="store_true", help="skip the tiny preset")
    parser.add_argument("--worker-timeout", type=float, default=1800, help="seconds a process")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--_worker", choices=("ours", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from neurobolt.train import limit_threads

    limit_threads(args.threads)
    if args._worker:
        result = worker(args._worker, args.reference, args.steps, args.seed)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    device = torch.device(args.device)
    emit("device", f"{device.type} ({args.threads} threads, torch {torch.__version__})")
    if args.repeats > 0:
        compare_on_cpu(args)
    if device.type == "cuda":
        gpu_figures(device)
    if not args.no_tiny:
        tiny_figures(device)


if __name__ == "__main__":
    main()
