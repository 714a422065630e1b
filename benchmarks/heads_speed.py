"""Shared vs per-ROI heads: training and prediction cost per ROI; one figure per line.

``model.heads: per_roi`` trains one model per ROI, ``shared`` one encoder with one output
per ROI. For ``--rois`` K (default: the demo's 2, the paper's 7 and the whole brain's 65)
this measures, in one process, with the training loop's own loss (masked MSE) and AdamW:

* training windows/s of one model with 1 output and with K outputs (forward + backward +
  step, ``--batch`` windows), and the ratio of the time to train all K ROIs
  (K one-output models vs one K-output model, same windows and epochs);
* seconds per predicted ROI for 1000 windows (eval, no grad, batch 64): a one-output
  model's time vs a K-output model's time / K, and their ratio.

Both wall-clock and process CPU seconds are printed (CPU time depends less on what else
runs on a shared machine). Where CUDA is present the paper preset's training throughput
on the GPU is added, fp32 and bf16 autocast, batch 16 and 64, with peak GPU memory;
otherwise those lines read ``n/a (no CUDA)``.

Usage::

    python benchmarks/heads_speed.py [--preset tiny|paper] [--rois 2 7 65] [--steps 8]
        [--batch 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from neurobolt.heads import masked_mse
from neurobolt.models import build_model
from neurobolt.train import limit_threads, param_groups

CHANNELS = (
    "FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 FPZ FZ CZ PZ POZ OZ FT9 FT10 TP9 TP10"
).split()
N_PATCHES = 16
PREDICT_WINDOWS, PREDICT_BATCH = 1000, 64


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def _model(preset: str, n_outputs: int, device, **options):
    torch.manual_seed(0)
    model = build_model(
        "neurobolt", preset=preset, n_outputs=n_outputs, n_patches=N_PATCHES, **options
    )
    return model.to(device)


def train_speed(preset, n_outputs, *, batch, steps, device, **options) -> tuple[float, float]:
    """Training windows/s (wall, CPU) of one model; 2 untimed warm-up steps."""
    model = _model(preset, n_outputs, device, **options).train()
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.65)
    opt = torch.optim.AdamW(groups, lr=1e-4)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, len(CHANNELS), N_PATCHES, 200, generator=gen).to(device)
    y = torch.randn(batch, n_outputs, generator=gen).to(device)

    def step():
        loss = masked_mse(model(x, CHANNELS).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = _clock()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = _since(start)
    return batch * steps / wall, batch * steps / max(cpu, 1e-9)


@torch.no_grad()
def predict_seconds(preset, n_outputs, *, device) -> tuple[float, float]:
    """Seconds (wall, CPU) to predict :data:`PREDICT_WINDOWS` windows with one model."""
    model = _model(preset, n_outputs, device).eval()
    x = torch.randn(PREDICT_BATCH, len(CHANNELS), N_PATCHES, 200).to(device)
    model(x, CHANNELS)  # warm-up
    n_batches = -(-PREDICT_WINDOWS // PREDICT_BATCH)
    start = _clock()
    for _ in range(n_batches):
        model(x, CHANNELS)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = _since(start)
    scale = PREDICT_WINDOWS / (n_batches * PREDICT_BATCH)
    return wall * scale, cpu * scale


def gpu_lines(steps: int) -> list[str]:
    """The paper preset's GPU training throughput (fp32, bf16) and peak memory."""
    labels = [
        f"GPU paper preset training, {dtype}, batch {b}"
        for dtype in ("fp32", "bf16")
        for b in (16, 64)
    ]
    if not torch.cuda.is_available():
        return [f"{label}: n/a (no CUDA)" for label in labels] + [
            "GPU paper preset peak memory: n/a (no CUDA)"
        ]
    device = torch.device("cuda")
    out = []
    for dtype in ("fp32", "bf16"):
        for b in (16, 64):
            torch.cuda.reset_peak_memory_stats()
            wall, _ = train_speed(
                "paper", 7, batch=b, steps=steps, device=device, autocast_bf16=dtype == "bf16"
            )
            peak = torch.cuda.max_memory_allocated() / 2**30
            out.append(
                f"GPU paper preset training, {dtype}, batch {b}: {wall:.1f} windows/s,"
                f" peak GPU memory {peak:.2f} GiB ({torch.cuda.get_device_name()})"
            )
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    parser.add_argument("--rois", type=int, nargs="+", default=[2, 7, 65])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    cpu = torch.device("cpu")
    print(f"# {args.preset} preset on CPU, {args.threads} thread(s), batch {args.batch}")
    one = train_speed(args.preset, 1, batch=args.batch, steps=args.steps, device=cpu)
    print(f"train windows/s, 1 output (per_roi): {one[0]:.1f} wall, {one[1]:.1f} CPU")
    pred_one = predict_seconds(args.preset, 1, device=cpu)
    print(
        f"predict s per ROI (1000 windows), per_roi: {pred_one[0]:.3f} wall, {pred_one[1]:.3f} CPU"
    )
    for k in args.rois:
        shared = train_speed(args.preset, k, batch=args.batch, steps=args.steps, device=cpu)
        print(f"train windows/s, {k} outputs (shared): {shared[0]:.1f} wall, {shared[1]:.1f} CPU")
        print(
            f"training time for {k} ROIs, per_roi / shared: {k * shared[0] / one[0]:.2f}x wall,"
            f" {k * shared[1] / one[1]:.2f}x CPU"
        )
        pred = predict_seconds(args.preset, k, device=cpu)
        print(
            f"predict s per ROI (1000 windows), shared {k}: {pred[0] / k:.4f} wall,"
            f" {pred[1] / k:.4f} CPU; per_roi / shared {k * pred_one[0] / pred[0]:.2f}x wall,"
            f" {k * pred_one[1] / pred[1]:.2f}x CPU"
        )
    for line in gpu_lines(args.steps):
        print(line)


if __name__ == "__main__":
    main()
