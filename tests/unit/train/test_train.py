"""Training loop: schedule formula, parameter groups, overfitting, exact resume, NaN refusal."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from neurobolt import metrics
from neurobolt import train as tr
from neurobolt.models import build_model

CH = ["O1", "O2", "CZ", "FZ"]


def test_schedule_matches_the_formula_at_its_landmarks():
    kw = {"total_steps": 200, "warmup_steps": 50, "lr": 3e-4, "min_lr": 1e-6}
    assert tr.lr_at(0, **kw) == 0.0
    assert tr.lr_at(25, **kw) == pytest.approx(1.5e-4)
    assert tr.lr_at(50, **kw) == pytest.approx(3e-4)
    last = 1e-6 + 0.5 * (3e-4 - 1e-6) * (1 + math.cos(math.pi * 149 / 150))
    assert tr.lr_at(199, **kw) == pytest.approx(last)
    assert tr.lr_at(200, **kw) == pytest.approx(1e-6)
    lrs = [tr.lr_at(s, **kw) for s in range(50, 201)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_param_groups_decay_layers_and_skip_norms():
    model = build_model("neurobolt", preset="tiny", n_outputs=1, n_patches=4)
    groups = tr.param_groups(model, weight_decay=0.05, layer_decay=0.65)
    n = model.num_layers
    scales = sorted({g["lr_scale"] for g in groups})
    assert scales[-1] == 1.0 and scales[0] == pytest.approx(0.65 ** (n + 1))
    names = {id(p): name for name, p in model.named_parameters()}
    for group in groups:
        for p in group["params"]:
            if p.ndim <= 1:
                assert group["weight_decay"] == 0.0, names[id(p)]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    head = [g for g in groups if any(p is model.head.weight for p in g["params"])][0]
    assert head["lr_scale"] == 1.0 and head["weight_decay"] == 0.05


def test_pearson_r():
    x = np.arange(10.0)
    np.testing.assert_allclose(metrics.pearson_r(np.c_[x, x], np.c_[2 * x + 1, -x]), [1.0, -1.0])
    assert metrics.pearson_r(np.ones(5), x[:5])[0] == 0.0


def _data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(CH), 4, 200, generator=g)
    y = x[:, 0, -1, :50].mean(dim=1, keepdim=True) * 3  # learnable from the EEG
    return TensorDataset(x, y)


def _fit(tmp_path, epochs, name="run", **kw):
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_outputs=1, n_patches=4, drop_path=0.1)
    config = tr.TrainConfig(epochs=epochs, warmup_epochs=1, lr=1e-3, seed=1, **kw)
    result = tr.fit(
        model,
        _data(),
        _data(16, seed=1),
        ch_names=CH,
        config=config,
        batch_size=8,
        checkpoint=tmp_path / f"{name}.ckpt",
        log_tsv=tmp_path / f"{name}.tsv",
        progress=False,
    )
    return model, result


EPOCHS = 2  # warm-up, then the cosine: enough for a resume in the middle


@pytest.fixture(scope="module")
def full_fit(tmp_path_factory):
    """One uninterrupted training (shared by the resume and NaN-fill tests), recording the
    deterministic-mode NaN-fill setting fit runs with in each epoch."""
    tmp = tmp_path_factory.mktemp("fit")
    det = torch.utils.deterministic
    seen = []
    original = tr._write_log

    def spy(path, history):  # runs inside fit, once per epoch
        seen.append(det.fill_uninitialized_memory)
        original(path, history)

    tr._write_log = spy
    try:
        _, result = _fit(tmp, EPOCHS, "full")
    finally:
        tr._write_log = original
    return {"result": result, "log": tmp / "full.tsv", "fill": seen}


def test_fit_logs_selects_on_validation_and_resumes_exactly(full_fit, tmp_path):
    full = full_fit["result"]
    log = pd.read_csv(full_fit["log"], sep="\t")
    assert list(log.columns) == ["epoch", "lr", "train_loss", "val_loss", "val_r"]
    assert len(log) == EPOCHS and log["train_loss"].iloc[-1] < log["train_loss"].iloc[0]
    assert full["best_val_r"] == pytest.approx(log["val_r"].max())
    # Interrupted during epoch 2 (as if killed), then rerun with the same checkpoint.
    part_ckpt = tmp_path / "part.ckpt"
    _fit_until(tmp_path, stop_after=1)
    assert part_ckpt.exists()
    _, resumed = _fit(tmp_path, EPOCHS, "part")
    for key, value in full["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=0)
    assert resumed["history"] == full["history"]


def _fit_until(tmp_path, stop_after):
    """Run the training but die after ``stop_after`` epochs (checkpoint written)."""

    class Killed(Exception):
        pass

    original = tr._write_log

    def log_then_maybe_die(path, history):
        original(path, history)
        if len(history) == stop_after + 1:
            raise Killed

    tr._write_log = log_then_maybe_die
    try:
        with pytest.raises(Killed):
            _fit(tmp_path, EPOCHS, "part")
    finally:
        tr._write_log = original


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    # (a NaN target is a missing value and is skipped: test_masked_targets_...)
    data = _data()
    data.tensors[0][3, 1, 2, 17] = float("nan")  # a NaN in the EEG
    model = build_model("neurobolt", preset="tiny", n_outputs=1, n_patches=4)
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        tr.fit(
            model,
            data,
            _data(8),
            ch_names=CH,
            config=tr.TrainConfig(epochs=1, warmup_epochs=0),
            batch_size=32,
            checkpoint=tmp_path / "c.ckpt",
            log_tsv=tmp_path / "l.tsv",
            progress=False,
        )


def test_damaged_checkpoint_is_named(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"bad\.ckpt.*delete it"):
        tr.load_checkpoint(bad)


def test_unknown_train_option_is_refused_by_name():
    with pytest.raises(ValueError, match="epoch_count"):
        tr.TrainConfig.from_section({"epoch_count": 3})


def test_fit_skips_the_nan_fill_without_changing_results(full_fit, tmp_path):
    # fit runs with deterministic mode's NaN fill of new tensors off (a speed-up): the
    # result must be bit-identical to training with the fill on, and the setting restored.
    det = torch.utils.deterministic
    assert full_fit["fill"] == [False] * EPOCHS and det.fill_uninitialized_memory
    fast = full_fit["result"]
    unwrapped, tr.fit = tr.fit, tr.fit.__wrapped__  # the same loop, the fill left on
    try:
        _, filled = _fit(tmp_path, EPOCHS, "filled")
    finally:
        tr.fit = unwrapped
    assert fast["history"] == filled["history"]
    for key, value in filled["state_dict"].items():
        torch.testing.assert_close(fast["state_dict"][key], value, rtol=0, atol=0)


def test_limit_threads_caps_torch_and_blas_pools():
    """A job given one core uses one thread everywhere (run apart: pools are per process)."""
    import subprocess
    import sys

    code = (
        "import numpy, torch\n"
        "from threadpoolctl import threadpool_info\n"
        "from neurobolt.train import limit_threads\n"
        "limit_threads(1)\n"
        "assert torch.get_num_threads() == 1 and torch.get_num_interop_threads() == 1\n"
        "pools = threadpool_info()\n"
        "assert pools and all(p['num_threads'] == 1 for p in pools), pools\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


# --------------------------------------------------------------------------------------------
# Several ROIs per model (model.heads: shared)
# --------------------------------------------------------------------------------------------


def test_masked_targets_do_not_contribute_to_the_loss():
    """The loss is each ROI's mean squared error over its finite targets, averaged over the
    ROIs with any: written out by hand here; missing targets get exactly zero gradient."""
    from neurobolt.heads import masked_mse

    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 3, generator=gen, requires_grad=True)
    y = torch.randn(6, 3, generator=gen)
    y[[0, 4], 0] = float("nan")
    y[:, 2] = float("nan")  # an ROI missing in the whole batch
    loss = masked_mse(pred, y)
    loss.backward()
    d = (pred - torch.nan_to_num(y)).detach()
    by_hand = ((d[[1, 2, 3, 5], 0] ** 2).mean() + (d[:, 1] ** 2).mean()) / 2
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert (pred.grad[[0, 4], 0] == 0).all() and (pred.grad[:, 2] == 0).all()
    np.testing.assert_allclose(pred.grad[[1, 2, 3, 5], 0], d[[1, 2, 3, 5], 0] / 4, rtol=1e-6)
    np.testing.assert_allclose(pred.grad[:, 1], d[:, 1] / 6, rtol=1e-6)
    # Through a model: the missing entries' values change nothing; with every target
    # finite the loss is plain MSE.
    model = build_model("neurobolt", preset="tiny", n_outputs=3, n_patches=4).eval()
    x = _data(6).tensors[0]
    grads = []
    for fill in (float("nan"), float("inf")):
        model.zero_grad()
        target = y.clone()
        target[~torch.isfinite(y)] = fill
        masked_mse(model(x, CH), target).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (
        masked_mse(pred, y.nan_to_num()).item()
        == torch.nn.functional.mse_loss(pred, y.nan_to_num()).item()
    )
    assert masked_mse(pred, torch.full_like(y, float("nan"))).item() == 0.0


def test_shared_fit_selects_on_mean_validation_r(tmp_path):
    """Two ROIs, one learnable and one pure noise (its validation R hovers around 0): the
    kept epoch is the best mean, and the per-ROI R at that epoch is returned."""
    base = _data(16)
    val = _data(8, seed=1)
    noise = torch.randn(len(base), 1, generator=torch.Generator().manual_seed(5))
    y2 = torch.cat([base.tensors[1], noise], dim=1)
    v2 = torch.cat([val.tensors[1], torch.randn(8, 1)], dim=1)
    v2[3, 0] = float("nan")  # a missing validation target
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_outputs=2, n_patches=4)
    result = tr.fit(
        model,
        TensorDataset(base.tensors[0], y2),
        TensorDataset(val.tensors[0], v2),
        ch_names=CH,
        config=tr.TrainConfig(epochs=2, warmup_epochs=1, lr=1e-3, seed=1),
        batch_size=8,
        checkpoint=tmp_path / "c.ckpt",
        log_tsv=tmp_path / "l.tsv",
        progress=False,
    )
    log = pd.read_csv(tmp_path / "l.tsv", sep="\t")
    assert result["best_val_r"] == pytest.approx(log["val_r"].max())
    assert result["best_val_r"] == pytest.approx(np.mean(result["val_r"]))
    assert len(result["val_r"]) == 2 and np.isfinite(result["val_r"]).all()


def test_ridge_fits_every_roi_at_once_as_each_alone():
    """One solve for every ROI gives each ROI the coefficients (and alpha) of its own fit,
    also for an ROI with missing targets (fitted on its finite rows only). The targets are
    band-power-like signals plus noise, not the ridge model's own output."""
    from neurobolt.models.baselines import RidgeBandpower, bandpower_features

    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 4, 4, 200))
    f = bandpower_features(x)
    y = np.c_[
        np.tanh(f[:, 2]) + 0.5 * rng.standard_normal(90),
        f[:, 7] * f[:, 9] + rng.standard_normal(90),
        rng.standard_normal(90),
    ]
    y[[3, 10, 11], 1] = np.nan
    (xt, yt), (xv, yv) = (x[:60], y[:60]), (x[60:], y[60:])
    both = RidgeBandpower()
    scores = both.fit(xt, yt, xv, yv)
    assert all(len(r) == 3 for r in scores.values())
    for j in (0, 2):
        alone = RidgeBandpower()
        alone.fit(xt, yt[:, j : j + 1], xv, yv[:, j : j + 1])
        assert both.alpha[j] == alone.alpha[0]
        np.testing.assert_allclose(both.coef[:, j], alone.coef[:, 0], rtol=1e-6, atol=1e-9)
    # ROI 1: the ridge normal equations on its finite rows, solved by hand
    rows = np.isfinite(yt[:, 1])
    a = (bandpower_features(xt) - both.mean) / both.scale
    a, t = a[rows], yt[rows, 1] - yt[rows, 1].mean()
    coef = np.linalg.solve(a.T @ a + both.alpha[1] * np.eye(a.shape[1]), a.T @ t)
    np.testing.assert_allclose(both.coef[:, 1], coef, rtol=1e-6, atol=1e-9)
    assert both.intercept[1] == pytest.approx(yt[rows, 1].mean())
    assert both.alpha[1] == max(scores, key=lambda alpha: scores[alpha][1])
    restored = RidgeBandpower().load_state_dict(both.state_dict())
    np.testing.assert_allclose(restored.predict(xv), both.predict(xv))


def test_a_checkpoint_has_the_same_bytes_whatever_its_temporary_name(tmp_path):
    """``model.pt`` is written under a random temporary name; its bytes (and the SHA-256 that
    prediction sidecars record) must not depend on it."""
    import hashlib

    from neurobolt.inference import load_checkpoint, save_checkpoint

    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "meta": {"roi": "Cuneus"}}
    digests = set()
    for name in ("a", "b"):
        save_checkpoint(tmp_path / name / "model.pt", state)
        digests.add(hashlib.sha256((tmp_path / name / "model.pt").read_bytes()).hexdigest())
    assert len(digests) == 1
    assert torch.equal(
        load_checkpoint(tmp_path / "a" / "model.pt")["model"]["w"], state["model"]["w"]
    )
