"""The project's own contract: pins, config schema, README commands, CI and lint."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "neurobolt" / "config.schema.yaml"
BIN = Path(sys.executable).parent


def _snakemake(*args, cwd=REPO):
    return subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_pyproject_and_conda_env_pin_the_same_versions():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = project["dependencies"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^,;]*", p) for p in pins), pins
    env = yaml.safe_load((REPO / "envs" / "neurobolt.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(pins)
    assert "torch==2.13.0" in pins
    assert "python=3.11" in env["dependencies"]
    assert all("==" in p for p in project["optional-dependencies"]["test"])


def _walk(schema, path="config"):
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{key}")


def test_every_config_key_has_a_type_default_and_description():
    schema = yaml.safe_load(SCHEMA.read_text())
    keys = list(_walk(schema))
    assert len(keys) > 15
    for path, sub in keys:
        if path == "config":
            continue
        missing = {"type", "default", "description"} - set(sub)
        assert not missing, f"{path} lacks {missing}"
    for path, sub in keys:
        if sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, f"{path} accepts unknown keys"


def test_demo_config_validates_and_defaults_fill_in():
    schema_path = str(SCHEMA)
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(copy.deepcopy(demo), schema_path)
    sparse = {"simulate": {"enabled": True}}
    validate(sparse, schema_path)
    assert sparse["simulate"]["tr"] == 2.1
    assert sparse["bids"]["space"] == "MNI152NLin6Asym"
    assert sparse["results_dir"] == "results"


def _defaults(schema):
    return {
        key: _defaults(sub) if "properties" in sub else sub["default"]
        for key, sub in schema.get("properties", {}).items()
    }


def test_schema_defaults_equal_the_library_defaults():
    from neurobolt.eeg.clean import DEFAULT_CONFIG as EEG
    from neurobolt.fmri.signals import DEFAULTS as FMRI
    from neurobolt.store import DEFAULTS as STORE

    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    assert _defaults(schema["fmri"]) == FMRI
    assert _defaults(schema["store"]) == STORE
    assert _defaults(schema["eeg"]) == EEG


def test_unknown_or_misspelled_keys_are_refused_by_name(tmp_path):
    out = _snakemake("-n", "--cores", "1", "--config", "bogus_key=1")
    assert out.returncode != 0
    assert "bogus_key" in out.stdout + out.stderr
    nested = tmp_path / "typo.yaml"
    nested.write_text("simulate:\n  n_subject: 3\n")
    out = _snakemake("-n", "--cores", "1", "--configfile", str(nested))
    assert out.returncode != 0
    assert "n_subject" in out.stdout + out.stderr


def test_results_inside_the_bids_dataset_are_refused():
    out = _snakemake("-n", "--cores", "1", "--config", "results_dir=data/simulated/derivatives/x")
    assert out.returncode != 0
    assert "inside the input BIDS dataset" in out.stdout + out.stderr


def _readme_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)


def test_readme_opens_with_the_two_setup_commands_and_ci_runs_the_second():
    blocks = _readme_commands()
    demo, tests = blocks[0].strip(), blocks[1].strip()
    assert "python3.11 -m venv" in demo and "snakemake --cores 2" in demo
    assert "python3.11 -m venv" in tests and "pytest" in tests
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.index(demo) < readme.index(tests) < readme.index("\n## ", readme.index(tests))
    ci = (REPO / ".ci" / "run").read_text()
    assert "README.md" in ci  # .ci/run extracts and runs the README's second command
    extracted = subprocess.run(
        ["bash", str(REPO / ".ci" / "run"), "--print"], capture_output=True, text=True, cwd=REPO
    )
    assert extracted.returncode == 0, extracted.stderr
    assert extracted.stdout.strip() == tests


@pytest.mark.parametrize(
    "tool",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("snakefmt", "--check", "."),
        ("snakemake", "--lint"),
    ],
    ids=lambda t: " ".join(t[:2]),
)
def test_lint_is_clean(tool):
    out = subprocess.run(
        [str(BIN / tool[0]), *tool[1:]], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
