"""BIDS-App entry point: ``neurobolt BIDS_DIR OUTPUT_DIR participant|group``.

It runs the repository's Snakefile with Snakemake's command line in a subprocess (the
library never imports snakemake): the configuration file (the demo's by default) with its
``bids`` and ``results_dir`` keys replaced by the command's arguments is written to
``<work_dir>/logs/neurobolt/config.yaml`` and handed to ``snakemake --configfile``.

``participant`` builds every selected run's derivatives (clean EEG, ROI signals, window
store) and its intra-subject models; ``group`` builds everything, including the
inter-subject models and the group tables.

Before anything starts, the input dataset is checked with the BIDS validator when one is
installed (``$NEUROBOLT_BIDS_VALIDATOR``, the repository's ``.tools/``, or the PATH); a
dataset with errors is refused with the validator's findings (``--skip-bids-validation``
skips the check). Exit status, as BIDS Apps use it: 0 success; 1 the dataset failed the
BIDS validator (nothing started) or the workflow failed (Snakemake's status); 2 a bad
command line or a refused argument (a missing dataset, an output folder inside it, a
participant label the dataset does not have, no participant left).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import shutil
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

#: Exit status of a dataset that fails the BIDS validator (argparse and refused arguments: 2).
EXIT_INVALID_DATASET = 1


class AppError(ValueError):
    """A refused BIDS-App argument: reported as ``neurobolt: error: ...``, exit status 2."""


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
            "train_intra, -- --rerun-incomplete).\n\n"
            "The input dataset is checked with the BIDS validator first when one is installed"
            " (bids-validator on the PATH, in the repository's .tools/ or"
            " $NEUROBOLT_BIDS_VALIDATOR).\n\n"
            "Exit status: 0 success; 1 the dataset failed the BIDS validator (nothing started)"
            " or the workflow failed; 2 a bad command line or a refused argument."
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
    parser.add_argument(
        "--exclude-participant-label",
        nargs="+",
        default=None,
        metavar="LABEL",
        help="subjects to leave out (with or without 'sub-'), after --participant-label",
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
        "--n-cpus",
        "--cores",
        dest="cores",
        type=_cpus,
        default=None,
        metavar="N",
        help="CPUs the jobs may use at once (snakemake --cores; default: all, or what the"
        " profile says)",
    )
    parser.add_argument(
        "--mem-mb",
        type=_positive_int,
        default=None,
        metavar="MB",
        help="memory the running jobs may hold together, in MB (snakemake --resources"
        " mem_mb=MB); snakemake stops with an error naming a job that needs more."
        " Default: no limit",
    )
    parser.add_argument(
        "--skip-bids-validation",
        action="store_true",
        help="do not check the input dataset with the BIDS validator before starting",
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


def _cpus(text: str) -> int | str:
    """``--n-cpus``: a positive whole number, or ``all``."""
    return "all" if text == "all" else _positive_int(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def dataset_subjects(bids_dir: Path) -> list[str]:
    """The subject labels of a BIDS dataset (its ``sub-*`` folders), sorted."""
    return sorted(p.name.removeprefix("sub-") for p in Path(bids_dir).glob("sub-*") if p.is_dir())


def select_participants(
    available: Sequence[str],
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> list[str] | None:
    """The participants a run processes: ``include`` (default: all) minus ``exclude``.

    Parameters
    ----------
    available : sequence of str
        The dataset's subject labels.
    include, exclude : sequence of str | None
        ``--participant-label`` and ``--exclude-participant-label`` (with or without
        ``sub-``).

    Returns
    -------
    labels : list of str | None
        None when neither is given (the configuration's own filter stays).

    Raises
    ------
    AppError
        A label the dataset does not have, or no participant left.
    """
    from .bids import entity_labels

    if include is None and exclude is None:
        return None
    include_labels = entity_labels(include) if include is not None else list(available)
    exclude_labels = entity_labels(exclude) if exclude is not None else []
    for option, labels in (
        ("--participant-label", include_labels),
        ("--exclude-participant-label", exclude_labels),
    ):
        unknown = sorted(set(labels) - set(available))
        if unknown:
            raise AppError(
                f"{option}: the dataset has no subject(s) {', '.join(unknown)}"
                f" (it has: {', '.join(available) or 'none'})"
            )
    selected = [label for label in include_labels if label not in set(exclude_labels)]
    if not selected:
        raise AppError(
            "no participant left: --exclude-participant-label removes every selected subject"
        )
    return selected


def find_validator(workflow: Path | None = None) -> str | None:
    """The BIDS validator's executable: ``$NEUROBOLT_BIDS_VALIDATOR``, the workflow's
    ``.tools/node_modules/.bin/bids-validator`` (the README's test command installs it
    there) or ``bids-validator`` on the PATH; None when there is none."""
    env = os.environ.get("NEUROBOLT_BIDS_VALIDATOR")
    if env:
        return env
    local = (workflow or workflow_dir()) / ".tools" / "node_modules" / ".bin" / "bids-validator"
    if local.is_file():
        return str(local)
    return shutil.which("bids-validator")


def bids_validation(bids_dir: Path, *, validator: str, timeout: float = 3600) -> list[dict]:
    """Run the BIDS validator on a dataset and return its errors.

    Parameters
    ----------
    bids_dir : Path
        The dataset.
    validator : str
        The validator's executable (``bids-validator`` 1.x, whose ``--json`` report lists
        ``issues.errors``).
    timeout : float
        Seconds before giving up.

    Returns
    -------
    errors : list of dict
        One per kind of error: ``code`` (the validator's key), ``reason`` and ``files``
        (the dataset-relative paths named, at most 10). Empty: the dataset is valid
        (warnings are not errors).

    Raises
    ------
    RuntimeError
        The validator did not produce a report.
    """
    out = subprocess.run(
        [validator, str(bids_dir), "--json", "--ignoreWarnings"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        report = json.loads(out.stdout)
    except ValueError:
        raise RuntimeError(
            f"the BIDS validator ({validator}) gave no report (exit status"
            f" {out.returncode}): {(out.stderr or out.stdout).strip()[-2000:]}"
        ) from None
    errors = []
    for issue in report.get("issues", {}).get("errors", []):
        files = [
            (f.get("file") or {}).get("relativePath") or f.get("evidence") or ""
            for f in issue.get("files") or []
        ]
        errors.append(
            {
                "code": issue.get("key") or str(issue.get("code")),
                "reason": issue.get("reason", ""),
                "files": [f for f in files if f][:10],
            }
        )
    return errors


def format_findings(errors: Sequence[Mapping[str, Any]]) -> str:
    """The validator's errors as lines of text."""
    lines = []
    for e in errors:
        lines.append(f"  [{e['code']}] {e['reason']}")
        lines += [f"      {path}" for path in e.get("files", [])]
    return "\n".join(lines)


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
    cores: int | str | None = None,
    mem_mb: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``python -m snakemake ...`` command line of a BIDS-App run (``cores``: its
    ``--cores``; ``mem_mb``: ``--resources mem_mb=<mem_mb>``)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile)]
    cmd += ["--directory", str(work_dir), "--configfile", str(config_file)]
    if profile is not None:
        own = snakefile.parent / "workflow" / "profiles" / profile
        path = Path(profile)
        cmd += ["--profile", str(path.resolve() if path.exists() else own)]
    if cores is not None or profile is None:
        cmd += ["--cores", str(cores or "all")]
    if mem_mb is not None:
        cmd += ["--resources", f"mem_mb={int(mem_mb)}"]
    return [*cmd, target, *extra]


def run_app(argv: Sequence[str], *, commands: Sequence[str] = ()) -> int:
    """Parse a BIDS-App command line, write its configuration and run Snakemake.

    Returns
    -------
    code : int
        Snakemake's exit status; 1 when the dataset fails the BIDS validator (nothing is
        started). A bad command line exits with status 2 (argparse); refused arguments raise
        :class:`AppError` or FileNotFoundError (status 2 from :func:`neurobolt.cli.main`).
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
    participants = select_participants(
        dataset_subjects(args.bids_dir),
        include=args.participant_label,
        exclude=args.exclude_participant_label,
    )
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
        participant_label=participants,
        session_label=args.session_label,
        task_label=args.task_label,
        fmriprep_dir=args.fmriprep_dir,
        space=args.space,
        level=args.analysis_level,
    )
    if args.skip_bids_validation:
        print("neurobolt: BIDS validation skipped (--skip-bids-validation)", file=sys.stderr)
    else:
        validator = find_validator(snakefile.parent)
        if validator is None:
            print(
                "neurobolt: no BIDS validator found (bids-validator on the PATH, in"
                " .tools/ or $NEUROBOLT_BIDS_VALIDATOR): the dataset is not validated",
                file=sys.stderr,
            )
        else:
            try:
                errors = bids_validation(args.bids_dir, validator=validator)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
                print(
                    f"neurobolt: error: {err}\nNothing was started; pass"
                    " --skip-bids-validation to run without the check.",
                    file=sys.stderr,
                )
                return EXIT_INVALID_DATASET
            if errors:
                print(
                    f"neurobolt: error: {args.bids_dir} is not a valid BIDS dataset; the BIDS"
                    f" validator ({validator}) found:\n{format_findings(errors)}\n"
                    "Nothing was started. Fix the dataset, or pass --skip-bids-validation"
                    " to run anyway.",
                    file=sys.stderr,
                )
                return EXIT_INVALID_DATASET
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
        mem_mb=args.mem_mb,
        extra=extra,
    )
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=False).returncode
