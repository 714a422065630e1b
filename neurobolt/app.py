"""BIDS-App entry point: ``neurobolt BIDS_DIR OUTPUT_DIR participant|group``.

It runs the repository's Snakefile with Snakemake's command line in a subprocess (the
library never imports snakemake): the configuration file (the demo's by default) with its
``bids`` and ``results_dir`` keys replaced by the command's arguments is written to
``<work_dir>/logs/neurobolt/config.yaml`` and handed to ``snakemake --configfile``.

``participant`` builds every selected run's derivatives (clean EEG, ROI signals, window
store) and its intra-subject models; ``group`` builds everything, including the
inter-subject models and the group tables.
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .provenance import write_text

#: Analysis level -> the Snakefile's target rule.
LEVELS = {"participant": "participant", "group": "all"}


def workflow_dir() -> Path:
    """The folder that holds the Snakefile (``$NEUROBOLT_WORKFLOW`` or the repository)."""
    env = os.environ.get("NEUROBOLT_WORKFLOW")
    return Path(env) if env else Path(__file__).resolve().parents[1]


def build_app_parser(commands: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser of ``neurobolt BIDS_DIR OUTPUT_DIR LEVEL``.

    Parameters
    ----------
    commands : sequence of str
        The other subcommands (``simulate``, ``runs``, ...), listed in the help.
    """
    others = "".join(f"\n  neurobolt {name} --help" for name in commands)
    parser = argparse.ArgumentParser(
        prog="neurobolt",
        usage="neurobolt BIDS_DIR OUTPUT_DIR {participant,group} [options] [-- SNAKEMAKE_ARGS]",
        description=(
            "Predict fMRI ROI signals from simultaneous EEG (NeuroBOLT). Runs the neurobolt "
            "Snakemake workflow on a BIDS EEG-fMRI dataset with fMRIPrep derivatives, as a "
            "BIDS App."
        ),
        epilog=(
            "Arguments after `--` go to snakemake unchanged (e.g. -- -n, -- --forcerun "
            "train_intra, -- --rerun-incomplete)."
            + (f"\n\nOther commands:{others}" if others else "")
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"neurobolt {__version__}")
    parser.add_argument("bids_dir", type=Path, help="the BIDS dataset (raw EEG and BOLD)")
    parser.add_argument(
        "output_dir", type=Path, help="where the derivatives go (never inside bids_dir)"
    )
    parser.add_argument(
        "analysis_level",
        choices=list(LEVELS),
        help="participant: per-run derivatives and intra-subject models; "
        "group: everything, with inter-subject models and the group tables",
    )
    parser.add_argument(
        "--participant-label",
        nargs="+",
        default=None,
        metavar="LABEL",
        help="subjects to include (with or without 'sub-'); default: all",
    )
    parser.add_argument("--session-label", nargs="+", default=None, metavar="LABEL")
    parser.add_argument("--task-label", nargs="+", default=None, metavar="LABEL")
    parser.add_argument(
        "--fmriprep-dir",
        type=Path,
        default=None,
        help="fMRIPrep derivatives (default: BIDS_DIR/derivatives/fmriprep)",
    )
    parser.add_argument("--space", default=None, help="fMRIPrep output space of the BOLD")
    parser.add_argument(
        "--config-file",
        type=Path,
        default=None,
        help="neurobolt configuration (model, training, ...; default: the workflow's "
        "config/config.yaml); its bids and results_dir keys are replaced",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="Snakemake profile: a folder, or 'local' / 'slurm' for the workflow's own",
    )
    parser.add_argument(
        "--cores",
        default=None,
        help="cores for local execution (default: all, or what the profile says)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="Snakemake's working directory: logs/, .snakemake/ (default: OUTPUT_DIR)",
    )
    parser.add_argument(
        "--snakefile",
        type=Path,
        default=None,
        help="the workflow (default: the Snakefile next to the neurobolt package)",
    )
    return parser


def app_config(
    base: Mapping[str, Any],
    *,
    bids_dir: Path,
    output_dir: Path,
    participant_label: Sequence[str] | None = None,
    session_label: Sequence[str] | None = None,
    task_label: Sequence[str] | None = None,
    fmriprep_dir: Path | None = None,
    space: str | None = None,
    level: str = "group",
) -> dict[str, Any]:
    """The configuration of a BIDS-App run: ``base`` with the command's paths and filters.

    Parameters
    ----------
    base : mapping
        A neurobolt configuration (as read from its YAML file).
    bids_dir, output_dir : Path
        The input dataset and the derivatives folder (made absolute).
    participant_label, session_label, task_label : sequence of str | None
        Filters; None keeps the base configuration's.
    fmriprep_dir : Path | None
        fMRIPrep's derivatives; None keeps the base's when the base names the same dataset,
        else fMRIPrep's conventional place inside ``bids_dir``.
    space : str | None
        fMRIPrep output space; None keeps the base's.
    level : {"participant", "group"}
        At the participant level the inter-subject test scans are not predicted
        (``predict.held_out`` off): that needs the group's split, which a subset of the
        participants may not allow.

    Returns
    -------
    config : dict
        The simulator is off. When the dataset carries the simulator's atlas
        (``derivatives/simulation/atlas``) and the base names no atlas files, that atlas is
        used, as the workflow does for a dataset it simulates.
    """
    from .bids import entity_labels
    from .simulate import atlas_files

    config = copy.deepcopy(dict(base))
    if config.get("datasets"):
        raise ValueError(
            "the configuration lists several datasets (datasets:), but a BIDS-App run takes"
            " one BIDS_DIR; run `snakemake --configfile <config>` for the cross-dataset"
            " analyses, or drop the datasets list"
        )
    bids_dir, output_dir = Path(bids_dir).resolve(), Path(output_dir).resolve()
    config["results_dir"] = str(output_dir)
    bids = config.setdefault("bids", {})
    same_dataset = bids.get("root") is not None and Path(bids["root"]).resolve() == bids_dir
    bids["root"] = str(bids_dir)
    for key, labels in (
        ("subjects", participant_label),
        ("sessions", session_label),
        ("tasks", task_label),
    ):
        if labels is not None:
            bids[key] = entity_labels(labels) or []
    if fmriprep_dir is not None:
        bids["fmriprep_dir"] = str(Path(fmriprep_dir).resolve())
    elif bids.get("fmriprep_dir") and same_dataset:
        bids["fmriprep_dir"] = str(Path(bids["fmriprep_dir"]).resolve())
    else:
        bids["fmriprep_dir"] = None  # the base's named another dataset's
    if space is not None:
        bids["space"] = space
    config.setdefault("simulate", {})["enabled"] = False
    if level == "participant":
        config.setdefault("predict", {})["held_out"] = False
    atlas = config.setdefault("fmri", {}).setdefault("atlas", {})
    sim_atlas = atlas_files(bids_dir)
    if not (atlas.get("maps") or atlas.get("labels")) and all(
        path.is_file() for path in sim_atlas.values()
    ):
        atlas["maps"], atlas["labels"] = str(sim_atlas["maps"]), str(sim_atlas["labels"])
    return config


def snakemake_command(
    *,
    snakefile: Path,
    work_dir: Path,
    config_file: Path,
    target: str,
    profile: str | None = None,
    cores: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``python -m snakemake ...`` command line of a BIDS-App run."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile)]
    cmd += ["--directory", str(work_dir), "--configfile", str(config_file)]
    if profile is not None:
        own = snakefile.parent / "workflow" / "profiles" / profile
        path = Path(profile)
        cmd += ["--profile", str(path.resolve() if path.exists() else own)]
    if cores is not None or profile is None:
        cmd += ["--cores", str(cores or "all")]
    return [*cmd, target, *extra]


def run_app(argv: Sequence[str], *, commands: Sequence[str] = ()) -> int:
    """Parse a BIDS-App command line, write its configuration and run Snakemake.

    Returns
    -------
    code : int
        Snakemake's exit status (2 for a bad command line or input).
    """
    argv = list(argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = build_app_parser(commands).parse_args(argv)
    from .bids import check_output_dir

    if not (args.bids_dir / "dataset_description.json").is_file():
        raise FileNotFoundError(
            f"{args.bids_dir} is not a BIDS dataset (no dataset_description.json)"
        )
    check_output_dir(args.output_dir, args.bids_dir)
    snakefile = (args.snakefile or workflow_dir() / "Snakefile").resolve()
    if not snakefile.is_file():
        raise FileNotFoundError(
            f"no Snakefile at {snakefile}: pass --snakefile or set NEUROBOLT_WORKFLOW to the "
            "neurobolt repository"
        )
    config_path = args.config_file or snakefile.parent / "config" / "config.yaml"
    base = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    config = app_config(
        base,
        bids_dir=args.bids_dir,
        output_dir=args.output_dir,
        participant_label=args.participant_label,
        session_label=args.session_label,
        task_label=args.task_label,
        fmriprep_dir=args.fmriprep_dir,
        space=args.space,
        level=args.analysis_level,
    )
    work_dir = (args.work_dir or args.output_dir).resolve()
    run_config = work_dir / "logs" / "neurobolt" / "config.yaml"
    run_config.parent.mkdir(parents=True, exist_ok=True)
    write_text(run_config, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    cmd = snakemake_command(
        snakefile=snakefile,
        work_dir=work_dir,
        config_file=run_config,
        target=LEVELS[args.analysis_level],
        profile=args.profile,
        cores=args.cores,
        extra=extra,
    )
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=False).returncode
