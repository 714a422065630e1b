"""The BIDS validator and the derivative-name check shared by the unit and workflow tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from neurobolt.app import find_validator

REPO = Path(__file__).resolve().parents[2]

#: BIDS 1.10's entity order (rules/entities.yaml) up to desc, derivative entities included.
ENTITY_ORDER = [
    "sub", "ses", "sample", "task", "tracksys", "acq", "nuc", "voi", "ce", "trc", "stain",
    "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part", "proc", "hemi", "space",
    "split", "recording", "chunk", "atlas", "seg", "scale", "res", "den", "label", "desc",
]  # fmt: skip

#: bids-validator 1.15 config for a derivative folder: the derivative-entity files it cannot
#: name-check (checked by bids_derivative_name) and its raw-data-per-subject error (67).
VALIDATOR_CONFIG = {
    "ignore": [67],
    "ignoredFiles": [
        "/atlas-*_description.json",
        "/**/*_atlas-*_timeseries.*",
        "/**/*_desc-predicted_*",
        "/**/*_desc-clean_*",
    ],
}


def bids_derivative_name(name: str) -> bool:
    """Whether a file name is ``<entities>_<suffix>.<ext>`` with known entities, each once,
    in BIDS order, starting with ``sub-``, and alphanumeric labels."""
    stem, _, ext = name.partition(".")
    parts = stem.split("_")
    if not ext or len(parts) < 2 or not re.fullmatch(r"[A-Za-z0-9]+", parts[-1]):
        return False
    keys = []
    for part in parts[:-1]:
        found = re.fullmatch(r"([a-z]+)-([A-Za-z0-9]+)", part)
        if not found or found.group(1) not in ENTITY_ORDER:
            return False
        keys.append(ENTITY_ORDER.index(found.group(1)))
    return keys[0] == 0 and keys == sorted(set(keys))


def validator_or_skip():
    exe = find_validator(REPO)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("bids-validator is not installed: run the README's test command")
        pytest.skip("bids-validator 1.15 not installed (npm install --prefix .tools ...)")
    return exe


def validate_derivative(root: Path, tmp_path: Path) -> tuple[list[dict], list[Path]]:
    """bids-validator 1.15's errors on a derivative folder, and the files it could not
    name-check (to be checked with :func:`bids_derivative_name`)."""
    exe = validator_or_skip()
    config = tmp_path / "validator-config.json"
    config.write_text(json.dumps(VALIDATOR_CONFIG))
    out = subprocess.run(
        [exe, str(root), "--json", "--ignoreWarnings", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = json.loads(out.stdout)["issues"]["errors"]
    derivative_files = [
        p
        for pattern in ("*_atlas-*_timeseries.*", "*_desc-predicted_*", "*_desc-clean_*")
        for p in root.rglob(pattern)
    ]
    return errors, derivative_files
