"""Runtime settings of a job: threads and the torch device."""

from __future__ import annotations

import torch


def limit_threads(n: int) -> None:
    """Run on ``n`` threads: torch's intra- and inter-op pools and the BLAS/OpenMP pools.

    A job given one core by the scheduler otherwise still spreads inter-op and BLAS work
    over every core, and parallel jobs slow each other down.
    """
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set, or parallel work already ran in this process
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    threadpool_limits(n)


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
