"""The project's own contract: pins, config schema, README commands, CI and lint."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
import warnings
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
        # a deprecated key has no default: it is absent unless a user still sets it
        wanted = {"type", "description"} | (set() if sub.get("deprecated") else {"default"})
        missing = wanted - set(sub)
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
        if "properties" in sub or "default" in sub
    }


def test_schema_defaults_equal_the_library_defaults():
    from neurobolt.eeg import clean
    from neurobolt.fmri.signals import resolve_config
    from neurobolt.jobs.windows import store_options

    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    assert resolve_config(None) == _defaults(schema["fmri"])
    store = store_options(None)
    assert store.pop("marker") == schema["eeg"]["properties"]["volume_marker"]["default"]
    assert (
        store
        == _defaults(schema["store"])
        == {
            "window_s": 16,
            "dummy_markers": 0,
            "tr_tolerance": 0.01,
            "compression": None,
        }
    )
    if hasattr(clean, "DEFAULT_CONFIG"):
        assert _defaults(schema["eeg"]) == clean.DEFAULT_CONFIG


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "generalisation.yaml"])
def test_config_load_fills_defaults_as_snakemake_validate_and_passes_the_checks(name):
    from neurobolt import checks as nbchecks
    from neurobolt import config as nbconfig

    values = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    values = nbconfig.merge(values, yaml.safe_load((REPO / "config" / name).read_text()))
    expected = copy.deepcopy(values)
    validate(expected, str(SCHEMA))
    loaded = nbconfig.load(values)
    assert loaded == expected and loaded is not values
    assert nbchecks.check_config(loaded) == []
    assert nbconfig.load(REPO / "config" / "config.yaml")["store"]["window_s"] == 16


def test_config_load_refuses_schema_errors_and_warns_on_deprecated_keys():
    from neurobolt import checks as nbchecks
    from neurobolt import config as nbconfig

    with pytest.raises(ValueError, match=r"store\.window_s: -1 is less than or equal to"):
        nbconfig.load({"store": {"window_s": -1}})
    with pytest.warns(DeprecationWarning, match=r"store\.marker is deprecated.*eeg\.volume_marker"):
        loaded = nbconfig.load({"store": {"marker": "R128"}})
    assert loaded["store"]["marker"] == "R128" and loaded["eeg"]["volume_marker"] == "R128"
    with pytest.warns(DeprecationWarning, match=r"datasets\[0\]\.store\.marker"):
        nbchecks.check_config({"datasets": [{"label": "a", "store": {"marker": "V"}}]})


def test_config_check_lists_every_cross_field_error():
    from neurobolt import checks as nbchecks

    errors = nbchecks.check_config(
        {
            "fmri": {"rois": ["Cuneus", "Putamen"]},
            "evaluate": {"rois": ["Cuneus", "Thalamus"], "analyses": ["intra", "finetune"]},
            "predict": {"model": "ridge"},
        }
    )
    assert errors == [
        "evaluate.rois ['Thalamus'] are not in fmri.rois",
        "evaluate.analyses ['finetune'] need two datasets: list them under `datasets`",
        "evaluate.analyses: finetune starts from the zero_shot model; list zero_shot too",
        "predict.model 'ridge' is not trained (evaluate.models: ['neurobolt', 'ridge_bandpower'])",
    ]
    two = {"datasets": [{"label": "a", "bids": {"root": "a"}}, {"label": "b"}]}
    errors = nbchecks.check_config({**two, "evaluate": {"analyses": ["inter", "joint"]}})
    assert len(errors) == 1 and errors[0].startswith("evaluate.analyses: 'inter' splits")
    errors = nbchecks.check_config(
        {**two, "evaluate": {"analyses": ["joint"]}, "generalisation": {"source": "c"}}
    )
    assert errors == ["generalisation.source 'c' is not a dataset label (['a', 'b'])"]
    errors = nbchecks.check_config(
        {
            "fmri": {"rois": ["Heschl's gyrus", "Heschl’s gyrus"]},
            "results_dir": "data/x/out",
            "bids": {"root": "data/x"},
        }
    )
    assert len(errors) == 2 and errors[0].startswith("The output directory")
    assert errors[1].startswith("two ROIs share a file-name label")
    assert nbchecks.check_config({"fmri": {"rois": "al"}})[0].startswith("fmri.rois must be")


def test_typed_sections_fill_the_schema_defaults():
    from neurobolt import config as nbconfig

    bids = nbconfig.BidsSection.from_section({"root": "data/x"})
    assert bids.root == "data/x" and bids.space == "MNI152NLin6Asym" and bids.subjects == []
    assert nbconfig.EvaluateSection.from_section().analyses == ["intra", "inter"]
    assert nbconfig.PredictSection.from_section({"held_out": True}).held_out is True
    assert nbconfig.AtlasSection.from_section({"dimension": 128}).resolution_mm == 2
    gen = nbconfig.GeneralisationSection.from_section({"source": "a"})
    assert gen.source == "a" and gen.target is None and gen.target_counts == [9, 3, 4]
    assert nbconfig.StoreSection.from_section().window_s == nbconfig.defaults("store.window_s")
    with pytest.raises(ValueError, match="did you mean `store.window_s`"):
        nbconfig.StoreSection.from_section({"window": 8})


def test_the_simulator_never_imports_torch():
    code = "import sys, neurobolt.simulate; assert 'torch' not in sys.modules, 'torch imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


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


def test_unknown_eeg_option_of_the_public_stage_warns_for_one_release():
    """``clean_raw``'s options ignored an unknown key with a warning before they came from the
    schema: it still does (FutureWarning) for one release, and known keys are merged."""
    from neurobolt.eeg.clean import eeg_options

    with pytest.warns(FutureWarning, match=r"eeg\.bogus"):
        cfg = eeg_options({"sfreq": 250, "bogus": 1})
    assert cfg["sfreq"] == 250 and "bogus" not in cfg
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert eeg_options(None) == eeg_options({})
