"""A small training run, importable by a fresh interpreter that the tests kill (light imports)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from neurobolt import train as tr
from neurobolt.models import build_model

CH = ["O1", "O2", "CZ", "FZ"]


def data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(CH), 4, 200, generator=g)
    y = x[:, 0, -1, :50].mean(dim=1, keepdim=True) * 3
    return TensorDataset(x, y)


def fit_small(folder, *, epochs=2, train_set=None):
    """The small training run the kill test interrupts (also run in the killed process)."""
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_outputs=1, n_patches=4)
    return tr.fit(
        model,
        train_set if train_set is not None else data(),
        data(8, seed=1),
        ch_names=CH,
        config=tr.TrainConfig(epochs=epochs, warmup_epochs=1, lr=1e-3, seed=1),
        batch_size=8,
        checkpoint=Path(folder) / "checkpoint.pt",
        log_tsv=Path(folder) / "log.tsv",
        progress=False,
    )
