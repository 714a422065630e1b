"""Speed of the NeuroBOLT models; one figure per line.

Measures, for the ``paper`` preset (26 channels x 16 s x 200 Hz, fp32, AdamW, MSE):
training windows/s (forward + backward + AdamW step, batch 16; ours with the parameter
groups of ``neurobolt.train``), inference windows/s (eval, no grad, batch 64), the LaBraM /
spectral share of a forward + backward, parameter counts, peak memory; the same for
``tiny``. When a checkout of the public NeuroBOLT
implementation is given (``--reference PATH`` or ``NEUROBOLT_REFERENCE=PATH``; its
dependencies timm, einops and linear_attention_transformer must be importable, e.g. through
PYTHONPATH) the reference is measured in the same run, interleaved with ours, and the
median of the per-repeat ratios is printed. On a GPU (``--device cuda``) training is also
measured at batch 16 and 64 in fp32 and bf16.

On a shared, busy machine wall-clock rates swing with the other load. ``--clock cpu``
times with the process's CPU time instead (``time.process_time``: the work done, whatever
else runs); use it with ``--threads 1``, where no worker thread spins while waiting.

Usage::

    python benchmarks/model_speed.py [--reference PATH] [--repeats 5] [--threads 2]
        [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from neurobolt.models import build_model

CHANNELS = (
    "FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 FPZ FZ CZ PZ POZ OZ FT9 FT10 TP9 TP10"
).split()
N_PATCHES = 16
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]  # set by --clock


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(batch: int, device: torch.device, n_outputs: int = 1):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, len(CHANNELS), N_PATCHES, 200, generator=gen).to(device)
    y = torch.randn(batch, n_outputs, generator=gen).to(device)
    return x, y


class Runner:
    """One model + optimizer + fixed batch; ``train_step``/``infer``/``branch_times``."""

    def __init__(self, model, call, branches, device, *, bf16=False, groups=None):
        self.model = model.to(device)
        self.call = call  # (model, x) -> output
        self.branches = branches  # name -> (model, x) -> features
        self.device = device
        self.bf16 = bf16
        params = self.model.parameters() if groups is None else groups
        self.opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.05)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, x, y) -> None:
        self.model.train()
        with self._autocast():
            out = self.call(self.model, x)
        loss = F.mse_loss(out.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def train_rate(self, x, y, steps: int) -> float:
        _sync(self.device)
        start = clock()
        for _ in range(steps):
            self.train_step(x, y)
        _sync(self.device)
        return steps * x.shape[0] / (clock() - start)

    def infer_rate(self, x, steps: int) -> float:
        self.model.eval()
        with torch.no_grad(), self._autocast():
            _sync(self.device)
            start = clock()
            for _ in range(steps):
                self.call(self.model, x)
            _sync(self.device)
        return steps * x.shape[0] / (clock() - start)

    def branch_times(self, x) -> dict[str, float]:
        """Seconds of forward + backward of each branch alone (train mode)."""
        self.model.train()
        times = {}
        for name, fn in self.branches.items():
            _sync(self.device)
            start = clock()
            with self._autocast():
                feats = fn(self.model, x)
            feats.float().square().mean().backward()
            _sync(self.device)
            times[name] = clock() - start
            self.model.zero_grad(set_to_none=True)
        return times


def ours(preset: str, device, *, bf16=False) -> Runner:
    """Our model with the optimizer set-up of ``neurobolt.train``: AdamW parameter groups
    (no decay on norms, biases and embeddings; layer-wise lr decay 0.65)."""
    from neurobolt.train import param_groups

    torch.manual_seed(0)
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
    )


def reference(path: str, device) -> Runner:
    """The public NeuroBOLT model (``models/model.py`` of a checkout) in the paper setup."""
    import warnings

    # The checkout's ``models/`` has no __init__.py, so this file (benchmarks/model_speed.py) would
    # shadow it: put the checkout first and drop this file's folder while importing.
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
    torch.manual_seed(0)
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


def peak_rss_child(which: str, preset: str, reference_path: str | None, threads: int) -> float:
    """Peak RSS (GiB) of a fresh process doing 2 training steps at batch 16."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_peak", which, "--preset", preset]
    cmd += ["--threads", str(threads)]
    if reference_path:
        cmd += ["--reference", reference_path]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _peak_main(args) -> None:
    device = torch.device("cpu")
    runner = reference(args.reference, device) if args._peak == "reference" else None
    runner = runner or ours(args.preset, device)
    x, y = _batch(16, device)
    for _ in range(2):
        runner.train_step(x, y)
    print(_peak_rss_gib())


def _peak_rss_gib() -> float:
    """This process's peak resident memory in GiB (VmHWM; ru_maxrss would include the
    parent's at fork time)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def emit(name: str, value, unit: str = "") -> None:
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}{(' ' + unit) if unit else ''}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", default=os.environ.get("NEUROBOLT_REFERENCE"))
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1, help="training steps per repeat")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="wall time, or process CPU time"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="paper", help=argparse.SUPPRESS)
    parser.add_argument("--no-memory", action="store_true", help="skip peak-RSS subprocesses")
    parser.add_argument("--no-tiny", action="store_true", help="skip the tiny preset")
    parser.add_argument("--_peak", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    if args._peak:
        _peak_main(args)
        return
    device = torch.device(args.device)
    emit(
        "device",
        f"{device.type} ({torch.get_num_threads()} threads, torch {torch.__version__},"
        f" {args.clock} clock)",
    )

    x16, y16 = _batch(16, device)
    x64, _ = _batch(64, device)
    runners = {"ours": ours("paper", device)}
    if args.reference:
        runners["reference"] = reference(args.reference, device)
    model = runners["ours"].model
    emit("params_labram", n_params(model.labram))
    emit("params_spectral", n_params(model.spectral))
    emit("params_head", n_params(model.head))
    if "reference" in runners:
        ref = runners["reference"].model
        emit(
            "reference_params_labram", n_params(ref) - n_params(ref.mss_module) - n_params(ref.head)
        )
        emit("reference_params_spectral", n_params(ref.mss_module))
        emit("reference_params_head", n_params(ref.head))

    for runner in runners.values():  # warm-up
        runner.train_step(x16, y16)
        runner.infer_rate(x64, 1)

    train = {k: [] for k in runners}
    infer = {k: [] for k in runners}
    share = {k: [] for k in runners}
    # Interleaved step by step, alternating who goes first, so that both see the same load
    # of a shared machine; ratios are taken per repeat (adjacent in time).
    for rep in range(args.repeats):
        order = list(runners.items())
        order = order if rep % 2 == 0 else order[::-1]
        for key, runner in order:
            train[key].append(runner.train_rate(x16, y16, args.steps))
        for key, runner in order:
            infer[key].append(runner.infer_rate(x64, 1))
        for key, runner in order:
            t = runner.branch_times(x16)
            share[key].append(t["labram"] / (t["labram"] + t["spectral"]))

    med = statistics.median
    for key in runners:
        prefix = "" if key == "ours" else "reference_"
        emit(f"{prefix}train_windows_per_s", med(train[key]), "windows/s (paper, batch 16, fp32)")
        emit(f"{prefix}train_windows_per_s_best", max(train[key]), "windows/s (best repeat)")
        emit(
            f"{prefix}infer_windows_per_s", med(infer[key]), "windows/s (paper, batch 64, no grad)"
        )
        emit(f"{prefix}labram_share", med(share[key]), "of branch forward+backward")
        emit(f"{prefix}spectral_share", 1 - med(share[key]), "of branch forward+backward")
    if "reference" in runners:
        n = args.repeats
        ratios = [a / b for a, b in zip(train["ours"], train["reference"], strict=True)]
        emit("train_speedup_vs_reference", med(ratios), f"x (median of {n} paired repeats)")
        emit("train_speedup_range", f"{min(ratios):.2f}-{max(ratios):.2f}")
        emit("train_speedup_per_repeat", " ".join(f"{r:.2f}" for r in ratios))
        best = max(train["ours"]) / max(train["reference"])
        emit("train_speedup_best_vs_best", best, "x (ratio of the best repeats)")
        ratios = [a / b for a, b in zip(infer["ours"], infer["reference"], strict=True)]
        emit("infer_speedup_vs_reference", med(ratios), f"x (median of {n} paired repeats)")

    if device.type == "cuda":
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
    elif not args.no_memory:
        emit("peak_rss", peak_rss_child("ours", "paper", None, args.threads), "GiB (paper, train)")
        if args.reference:
            peak = peak_rss_child("reference", "paper", args.reference, args.threads)
            emit("reference_peak_rss", peak, "GiB (train)")

    if not args.no_tiny:
        tiny = ours("tiny", device)
        emit("tiny_params", n_params(tiny.model))
        tiny.train_step(x16, y16)
        emit("tiny_train_windows_per_s", med([tiny.train_rate(x16, y16, 3) for _ in range(3)]))
        emit("tiny_infer_windows_per_s", med([tiny.infer_rate(x64, 2) for _ in range(3)]))


if __name__ == "__main__":
    main()
