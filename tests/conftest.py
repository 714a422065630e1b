"""Shared fixtures: one small simulated dataset per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurobolt.simulate import planned_runs, simulate_dataset

REPO = Path(__file__).resolve().parents[1]

#: Small but complete: 2 subjects, the first with two sessions (3 runs), 2 min each. The
#: simulator's ``easy`` preset: the unit tests that use it check known answers on simple data;
#: tests/unit/simulate/test_simulate.py checks the realistic default on data of its own.
SMALL = {"n_subjects": 2, "n_two_session": 1, "duration_s": 120.0, "seed": 7, "easy": True}


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A simulated BIDS dataset under a path with a space and a non-ASCII character."""
    root = tmp_path_factory.mktemp("sim") / "bids dätaset"
    simulate_dataset(root, progress=False, **SMALL)
    return root


@pytest.fixture(scope="session")
def small_runs():
    """The runs :data:`SMALL` simulates."""
    return planned_runs(n_subjects=SMALL["n_subjects"], n_two_session=SMALL["n_two_session"])


@pytest.fixture(scope="session")
def simulation_record(small_dataset) -> dict:
    """The dataset's ``simulation.json``."""
    path = small_dataset / "derivatives" / "simulation" / "simulation.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """2 subjects x 40 s (19 volumes, 5 kHz), under a path with a space and a non-ASCII letter."""
    root = tmp_path_factory.mktemp("tiny") / "tiny bïds"
    simulate_dataset(
        root, n_subjects=2, n_two_session=0, duration_s=40, seed=3, easy=True, progress=False
    )
    return root


@pytest.fixture()
def reads(monkeypatch):
    """Every ``(store path, row)`` a WindowDataset reads (to prove a split is never read)."""
    from neurobolt import store as st

    seen = []
    original = st.WindowDataset.__getitem__

    def spy(self, item):
        s, row = self._index[item]
        seen.append((str(self.paths[s]), int(row)))
        return original(self, item)

    monkeypatch.setattr(st.WindowDataset, "__getitem__", spy)
    return seen
