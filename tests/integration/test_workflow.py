"""End to end: the demo workflow on a tiny simulated dataset (slow; CI runs it once).

One module-scoped run of ``snakemake --cores 2`` feeds every slow test here: the second
run, the rerun scenarios (dry runs that must schedule exactly the expected jobs), the
report, the provenance records and the SLURM run through the ``neurobolt`` command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import zipfile
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

import neurobolt
from neurobolt.derivatives import roi_signals_suffix
from neurobolt.predict import compare_with_measured

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
SLURM_SCRIPTS = REPO / "tests" / "slurm"

RUN = "sub-02_ses-01_task-rest"  # the scan whose input the rerun scenario touches
N_RUNS = 4  # 3 subjects, the first with two sessions
MODELS = 2  # neurobolt and ridge_bandpower, each one model for both ROIs (model.heads: shared)
ROIS = 2  # Cuneus and the null ROI (the demo's)
ROI_SIGNALS = roi_signals_suffix()  # atlas-DiFuMo_scale-64_timeseries


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory (with a space in its path) holding a tiny demo config."""
    wd = tmp_path_factory.mktemp("wf") / "demo run"
    (wd / "config").mkdir(parents=True)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["simulate"].update(n_subjects=3, n_two_session=1, duration_s=120)
    config["train"].update(epochs=1, warmup_epochs=0, inter_counts=[2, 1, 1])
    config["evaluate"].update(n_permutations=100)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return wd


def run_dirs(name):
    """``["sub-XX", "ses-YY"]`` of a run name."""
    return [part for part in name.split("_") if part.startswith(("sub-", "ses-"))]


def _run(workdir, *args, timeout=1200):
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    return subprocess.run(
        [*cmd, "--cores", "2", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def demo(workdir):
    """The demo workflow, run once to the end."""
    first = _run(workdir)
    assert first.returncode == 0, first.stderr[-4000:]
    return workdir


@pytest.mark.slow
def test_demo_runs_then_has_nothing_to_do(demo):
    results = demo / "results"
    desc = json.loads((results / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "neurobolt"
    runs = pd.read_csv(results / "runs.tsv", sep="\t", dtype=str)
    assert len(runs) == N_RUNS
    metrics = pd.read_csv(results / "group" / "metrics.tsv", sep="\t")
    assert list(metrics.columns) == [
        *("analysis", "scan", "subject", "roi", "model", "r", "r_ci_low", "r_ci_high"),
        *("mse", "n_test", "p_permutation"),
    ]
    # 4 scans intra + 1 test scan inter, for 2 models and 2 ROIs (one row per scan x ROI x
    # model whether the ROIs share a model or not).
    assert len(metrics) == (N_RUNS + 1) * MODELS * ROIS
    assert set(metrics["model"]) == {"neurobolt", "ridge_bandpower"}
    assert (results / "group" / "table.tsv").exists()
    assert (demo / "logs" / "simulate" / "simulate.log").exists()
    bench = demo / "logs" / "train_intra" / RUN / "shared" / "neurobolt.benchmark.tsv"
    assert "max_rss" in bench.read_text()
    # The inter-subject test scan, predicted from its raw EEG alone, gives evaluate's R.
    (held_out,) = metrics.loc[metrics["analysis"] == "inter", "scan"].unique()
    func = results / "/".join(run_dirs(held_out)) / "func"
    predicted = pd.read_csv(func / f"{held_out}_desc-predicted_timeseries.tsv", sep="\t")
    sidecar = json.loads((func / f"{held_out}_desc-predicted_timeseries.json").read_text())
    assert [m["RecordingInSplits"] for m in sidecar["Models"]] == [["test"]]
    assert (func / f"{held_out}_desc-predicted_bold.nii.gz").exists()
    measured = pd.read_csv(func / f"{held_out}_{ROI_SIGNALS}.tsv", sep="\t")
    kept = json.loads((func / f"{held_out}_{ROI_SIGNALS}.json").read_text())
    r = compare_with_measured(predicted, measured, kept_volumes=kept["KeptVolumes"])
    inter = metrics[(metrics["analysis"] == "inter") & (metrics["model"] == "neurobolt")]
    assert r["roi"].tolist() == ["Cuneus", "Cerebellum Crus II"]
    for roi, r_predicted in zip(r["roi"], r["r"], strict=True):
        assert abs(r_predicted - inter.loc[inter["roi"] == roi, "r"].iloc[0]) < 0.02, roi
    assert (results / "report.html").exists()
    assert sorted(p.name for p in results.glob("sub-*.html")) == [
        "sub-01.html",
        "sub-02.html",
        "sub-03.html",
    ]
    second = _run(demo)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "Nothing to be done" in second.stdout + second.stderr


def _planned(workdir, *args):
    """Job counts per rule of a dry run (``-n --quiet rules``); {} when nothing is to be done."""
    out = _run(workdir, "-n", "--quiet", "rules", *args, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", text, flags=re.M)}
    counts.pop("total", None)
    if not counts:
        assert "Nothing to be done" in text, text[-3000:]
    return counts


N_SUBJECTS = 3
#: The reports: every subject's page shows the inter-subject models' metrics.
REPORTS = {"subject_report": N_SUBJECTS, "report": 1, "report_figures": 1}
#: What one scan's intra models and everything that pools all scans need after that scan's
#: store changes: its 2 intra models, the 2 inter models, their evaluations, the tables,
#: the held-out scan's prediction (by the inter models) and the reports.
AFTER_ONE_STORE = {
    "windows": 1,
    "train_intra": MODELS,
    "evaluate_intra": MODELS,
    "train_inter": MODELS,
    "evaluate_inter": MODELS,
    "group_metrics": 1,
    "predict": 1,
    **REPORTS,
    "all": 1,
}
AFTER_EVERY_STORE = {
    **AFTER_ONE_STORE,
    "windows": N_RUNS,
    "train_intra": N_RUNS * MODELS,
    "evaluate_intra": N_RUNS * MODELS,
}


def _touched(path, *args, workdir):
    """The dry-run plan after touching ``path``; its time stamps are put back afterwards."""
    before = path.stat()
    try:
        path.touch()
        return _planned(workdir, *args)
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.slow
def test_changing_one_scans_eeg_reruns_only_that_scans_jobs(demo):
    eeg_dir = demo / "data" / "simulated" / "sub-02" / "ses-01" / "eeg"
    # The .eeg data file (> 1 MB: Snakemake compares time stamps) of one scan.
    planned = _touched(eeg_dir / f"{RUN}_eeg.eeg", workdir=demo)
    assert planned == {**AFTER_ONE_STORE, "clean_eeg": 1}
    # A small file whose content did not change: Snakemake compares its checksum, no rerun.
    assert _touched(eeg_dir / f"{RUN}_eeg.vhdr", workdir=demo) == {}
    assert _planned(demo) == {}


@pytest.mark.slow
def test_changing_the_eeg_section_reruns_only_eeg_dependent_jobs(demo, tmp_path):
    change = tmp_path / "eeg.yaml"
    change.write_text("eeg:\n  bcg:\n    n_components: 3\n")
    planned = _planned(demo, "--configfile", str(change))
    # Params are tracked: every clean_eeg and what reads it, and the re-validation (it checks
    # the eeg section too); no simulate, roi_signals, runs_table.
    assert planned == {**AFTER_EVERY_STORE, "clean_eeg": N_RUNS, "validate": 1}


@pytest.mark.slow
def test_changing_the_evaluation_reevaluates_without_retraining(demo, tmp_path):
    change = tmp_path / "evaluate.yaml"
    change.write_text("evaluate:\n  n_permutations: 50\n")
    planned = _planned(demo, "--configfile", str(change))
    assert planned == {
        "validate": 1,  # the re-validation checks the evaluate section too (the splits)
        "evaluate_intra": N_RUNS * MODELS,
        "evaluate_inter": MODELS,
        "group_metrics": 1,
        **REPORTS,
        "all": 1,
    }


@pytest.mark.slow
def test_forcerun_train_intra_retrains_without_preprocessing(demo):
    planned = _planned(demo, "--forcerun", "train_intra")
    assert planned == {
        "train_intra": N_RUNS * MODELS,
        "evaluate_intra": N_RUNS * MODELS,
        "group_metrics": 1,
        **REPORTS,
        "all": 1,
    }


@pytest.mark.slow
def test_every_output_records_the_neurobolt_version(demo):
    results = demo / "results"
    version = neurobolt.__version__
    sub = results / "sub-02" / "ses-01"
    qc = json.loads((sub / "eeg" / f"{RUN}_desc-clean_qc.json").read_text())
    assert qc["neurobolt_version"] == version
    sidecar = json.loads((sub / "func" / f"{RUN}_{ROI_SIGNALS}.json").read_text())
    assert sidecar["neurobolt_version"] == version
    with h5py.File(sub / "func" / f"{RUN}_windows.h5", "r") as store:
        assert store.attrs["neurobolt_version"] == version
    model_dir = results / "models" / "intra" / RUN / "roi-Cuneus" / "model-neurobolt"
    assert json.loads((model_dir / "metrics.json").read_text())["neurobolt_version"] == version
    desc = json.loads((results / "dataset_description.json").read_text())
    assert desc["GeneratedBy"][0]["Version"] == version
    assert desc["GeneratedBy"][0]["CodeURL"].startswith("https://")


@pytest.mark.slow
def test_report_zip_holds_the_tables_and_figures(demo, tmp_path):
    report = tmp_path / "report.zip"
    out = _run(demo, "--report", str(report), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    check_report_zip(report, demo / "results")


def check_report_zip(report, results):
    """snakemake --report's archive: the tables, Table 1 and the R distributions as
    figures, and every run's QC figures, each under its category with its caption."""
    with zipfile.ZipFile(report) as archive:
        names = archive.namelist()
        index = next(n for n in names if n.endswith("report.html"))
        page = archive.read(index).decode("utf-8")
    files = {Path(name).name for name in names}
    tables = {"metrics.tsv", "report.html", "runs.tsv", "table.tsv"}
    figures = {"table1.png", "r_distributions_intra.png", "r_distributions_inter.png"}
    assert tables | figures <= files, sorted(files)
    runs = pd.read_csv(results / "runs.tsv", sep="\t", dtype=str)["run"]
    for run in runs:  # every run's QC figures (each simulated run has an ECG: a BCG figure)
        for kind in ("spectra_eeg", "bcg_eeg", "markers_eeg", "rois_bold", "test_timeseries"):
            assert f"{run}_desc-{kind}.png" in files, (run, kind)
    qc = sorted(results.glob("sub-*/figures/*.png"))
    assert {p.name for p in qc} <= files and len(qc) >= 5 * len(runs)
    for text in ("Subject QC", "Table 1 as a figure", "filled points have a per-scan p"):
        assert text in page, text


@pytest.mark.slow
def test_derivative_folder_passes_the_bids_validator(demo, tmp_path):
    from bids_check import bids_derivative_name, validate_derivative

    results = demo / "results"
    errors, derivative_files = validate_derivative(results, tmp_path)
    assert errors == [], [(e["key"], e["files"][:3]) for e in errors]
    # ROI signals (+ json), cleaned EEG (vhdr, vmrk, eeg, channels, json, qc, qc signals) per
    # run; predicted x 3
    assert len(derivative_files) == 9 * N_RUNS + 3
    assert all(bids_derivative_name(p.name) for p in derivative_files)
    desc = json.loads((results / "dataset_description.json").read_text())
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:"}]
    assert desc["DatasetLinks"] == {"raw": "../data/simulated"}
    atlas = json.loads((results / "atlas-DiFuMo_description.json").read_text())
    assert "simulator" in atlas["Description"]


# --------------------------------------------------------------------------------------------
# SLURM: a private single-node cluster, the `neurobolt` command, the workflow's slurm profile
# --------------------------------------------------------------------------------------------

SLURM_STATE = Path(tempfile.gettempdir()) / "neurobolt-slurm-test"  # short: a socket lives here


@pytest.fixture(scope="module")
def slurm():
    """Environment variables of a running single-node SLURM (stopped afterwards)."""
    in_ci = bool(os.environ.get("CI"))
    if os.geteuid() != 0 and not in_ci:
        pytest.skip("the SLURM test installs and runs slurmctld/slurmd: needs root")
    start = subprocess.run(
        ["bash", str(SLURM_SCRIPTS / "start_slurm.sh"), str(SLURM_STATE)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if start.returncode in (3, 4) and not in_ci:
        pytest.skip(f"no SLURM here: {start.stderr.strip()[-500:]}")
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        conf = re.search(r"^export SLURM_CONF=(.+)$", start.stdout, flags=re.M).group(1)
        yield {**os.environ, "SLURM_CONF": conf}
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "stop_slurm.sh"), str(SLURM_STATE)])
        shutil.rmtree(SLURM_STATE, ignore_errors=True)


class _QueueWatch(threading.Thread):
    """Polls ``squeue`` every half second: the most jobs seen running at once."""

    def __init__(self, env):
        super().__init__(daemon=True)
        self.env, self.most_running, self.done = env, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            out = subprocess.run(
                ["squeue", "-h", "-t", "R", "-o", "%i"],
                capture_output=True,
                text=True,
                env=self.env,
            )
            self.most_running = max(self.most_running, len(out.stdout.split()))
            time.sleep(0.5)


def _neurobolt(demo, out, *args, env=None, timeout=900):
    cmd = [
        "timeout",
        "-k",
        "10",
        str(timeout),
        str(BIN / "neurobolt"),
        str(demo / "data" / "simulated"),
        str(out),
        "group",
        "--config-file",
        str(demo / "config" / "config.yaml"),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout + 30)


@pytest.mark.slow
@pytest.mark.slurm
def test_neurobolt_on_slurm_matches_the_local_snakemake_run(demo, slurm, tmp_path):
    """`neurobolt BIDS OUT group` in three steps: preprocessing here, the training rules
    through sbatch, evaluation and the group tables here (reports and predictions after them
    are not needed for the comparison)."""
    out = tmp_path / "bids app out"
    local = _neurobolt(demo, out, "--cores", "2", "--", "--until", "windows")
    assert local.returncode == 0, local.stderr[-4000:]
    assert not (out / "models").exists()

    watch = _QueueWatch(slurm)
    watch.start()
    started = time.monotonic()
    run = _neurobolt(
        demo,
        out,
        "--profile",
        "slurm",
        "--",
        "--jobs",
        "4",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "10",
        "--until",
        "train_intra",
        "train_inter",
        env=slurm,
    )
    wall = time.monotonic() - started
    watch.done.set()
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    print(f"SLURM run of the training rules: {wall:.0f} s")

    submitted = dict(
        re.findall(r"submitted with SLURM jobid (\d+) \(log: [^)]*?/rule_(\w+?)/", log)
    )
    rules = sorted(submitted.values())
    assert rules == ["train_inter"] * MODELS + ["train_intra"] * (N_RUNS * MODELS), rules
    seen = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, env=slurm
    ).stdout
    states = dict(line.split() for line in seen.splitlines())
    assert set(submitted) <= set(states), (submitted, states)
    assert {states[job] for job in submitted} == {"COMPLETED"}
    assert 2 <= watch.most_running <= 4  # jobs: 4, sharing the node's 2 cores
    shown = subprocess.run(
        ["scontrol", "show", "job", next(iter(submitted))],
        capture_output=True,
        text=True,
        env=slurm,
    ).stdout
    assert "gres:gpu:1" in shown or "gres/gpu=1" in shown, shown  # the profile's GPU request
    # The models trained through SLURM are the local run's, epoch for epoch.
    logs = sorted((out / "models").glob("*/**/log.tsv"))
    assert len(logs) == len(submitted)
    for path in logs:
        twin = demo / "results" / path.relative_to(out)
        assert path.read_bytes() == twin.read_bytes(), path

    finish = _neurobolt(demo, out, "--cores", "2", "--", "--until", "group_metrics")
    assert finish.returncode == 0, finish.stderr[-4000:]
    assert "submitted with SLURM" not in finish.stdout + finish.stderr
    ours = pd.read_csv(out / "group" / "metrics.tsv", sep="\t")
    reference = pd.read_csv(demo / "results" / "group" / "metrics.tsv", sep="\t")
    pd.testing.assert_frame_equal(ours, reference, check_exact=True)
    assert (out / "group" / "metrics.tsv").read_bytes() == (
        demo / "results" / "group" / "metrics.tsv"
    ).read_bytes()


HEAVY = {"simulate", "clean_eeg", "roi_signals", "windows", "predict"} | {
    f"{step}_{analysis}"
    for step in ("train", "evaluate")
    for analysis in ("intra", "inter", "transfer")
}


def _rule_blocks():
    """Rule name -> its text, from every workflow/rules/*.smk."""
    blocks = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = path.read_text(encoding="utf-8")
        parts = re.split(r"^\s*rule ?(\w*):\n", text, flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if not name:  # `rule:` made in a loop, one per dataset: its single-dataset name
                name = re.search(r'name:\s+f".*" if \w+ else "(\w+)"', body).group(1)
            blocks[name] = body
    return blocks


def test_every_rule_declares_its_env_threads_resources_log_and_benchmark():
    blocks = _rule_blocks()
    assert HEAVY <= set(blocks)
    for rule, text in blocks.items():
        assert re.search(r"conda:\s+ENV\b", text), f"{rule}: no conda env"
        assert "threads:" in text, f"{rule}: no threads"
        assert re.search(r"mem_mb=\S+\s+runtime=\S+", text), f"{rule}: mem_mb/runtime"
        assert re.search(rf'log:\s+f?"logs/{rule}/', text), f"{rule}: log not in logs/{rule}/"
        assert ("gpu=1" in text) == rule.startswith("train_"), f"{rule}: gpu"
        assert ("benchmark:" in text) == (rule in HEAVY), f"{rule}: benchmark"
    env = REPO / "workflow" / "rules" / "config.smk"
    assert 'ENV = "../../envs/neurobolt.yaml"' in env.read_text(encoding="utf-8")


def test_the_conda_env_installs_neurobolt_from_the_snakefiles_repository():
    """The post-deploy step pip-installs the repository (no sys.path edits under workflow/);
    the Snakefile tells it where the repository is; setuptools builds it without isolation,
    the version pyproject's build system asks for (tried: a venv with setuptools 65 and
    wheel installs it editable with this script)."""
    script = (REPO / "envs" / "neurobolt.post-deploy.sh").read_text(encoding="utf-8")
    assert "pip install --no-deps --no-build-isolation" in script
    assert '"${NEUROBOLT_SOURCE}"' in script
    snakefile = (REPO / "Snakefile").read_text(encoding="utf-8")
    assert "os.environ.update(NEUROBOLT_SOURCE=workflow.basedir)" in snakefile
    env = yaml.safe_load((REPO / "envs" / "neurobolt.yaml").read_text())
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    setuptools = [d for d in env["dependencies"] if str(d).startswith("setuptools")]
    assert setuptools == [s.replace(" ", "") for s in build if s.startswith("setuptools")]
    assert "wheel" in env["dependencies"]  # setuptools < 70.1 builds editables with it


def test_slurm_profile_asks_for_a_gpu_with_gres_and_retries_with_more_memory():
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["latency-wait"] >= 60
    for rule in ("train_intra", "train_inter"):
        assert profile["set-resources"][rule] == {"gres": "gpu:1", "gpu": 0}
    common = (REPO / "workflow" / "rules" / "resources.smk").read_text(encoding="utf-8")
    mem_functions = re.findall(r"^def (\w+_mem_mb)\(.*attempt\)", common, flags=re.M)
    assert len(mem_functions) >= 5
    for name in mem_functions:  # every memory estimate grows with the attempt
        body = common.split(f"def {name}(", 1)[1].split("\ndef ", 1)[0]
        assert "* attempt" in body, name


def test_paper_config_plans_the_full_experiment(tmp_path):
    """7 ROIs x 29 scans intra-subject and 7 ROIs inter-subject, for each of the 5 models."""
    out = subprocess.run(
        [
            SNAKEMAKE,
            "-n",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(REPO / "config" / "paper.yaml"),
            "--cores",
            "2",
            "--quiet",
            "rules",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout + out.stderr, flags=re.M))
    assert int(counts["train_intra"]) == 29 * 7 * 5
    assert int(counts["evaluate_intra"]) == 29 * 7 * 5
    assert int(counts["train_inter"]) == 7 * 5
    assert int(counts["clean_eeg"]) == 29 and int(counts["windows"]) == 29


def test_whole_brain_config_plans_one_shared_model_per_scan(tmp_path):
    """fmri.rois: all + model.heads: shared: every DiFuMo-64 component and the global signal
    are modelled by one model per (scan, model) intra-subject and one per model inter-subject,
    each ROI's metrics.json in its own folder (the whole-brain run itself: test_predict.py)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["fmri"]["rois"] = "all"
    config["evaluate"]["rois"] = []
    config["model"]["heads"] = "shared"
    (tmp_path / "wb.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    base = [SNAKEMAKE, "group_metrics", "--snakefile", str(REPO / "Snakefile")]
    base += ["--directory", str(tmp_path), "--configfile", str(tmp_path / "wb.yaml")]
    out = subprocess.run(
        [*base, "-n", "--cores", "2", "--quiet", "rules"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout + out.stderr, flags=re.M))
    n_runs, n_models = 5, len(config["evaluate"]["models"])
    assert int(counts["train_intra"]) == int(counts["evaluate_intra"]) == n_runs * n_models
    assert int(counts["train_inter"]) == int(counts["evaluate_inter"]) == n_models
    summary = subprocess.run(
        [*base, "--detailed-summary"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert summary.returncode == 0, summary.stderr[-3000:]
    metrics = set(
        re.findall(r"models/inter/roi-(\w+)/model-neurobolt/metrics\.json", summary.stdout)
    )
    assert len(metrics) == 65 and {"Caudate", "Cuneus", "GlobalSignal"} <= metrics
