"""The ``neurobolt`` command line.

``neurobolt BIDS_DIR OUTPUT_DIR participant|group`` runs the whole workflow (a BIDS App, see
:mod:`neurobolt.app`); the subcommands simulate a dataset, list and validate the runs of a
dataset, and predict fMRI ROI signals from an EEG recording.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from . import config as nbconfig


def _simulate(args) -> int:
    from .simulate import simulate_dataset

    simulate_dataset(
        args.bids_root,
        n_subjects=args.n_subjects,
        n_two_session=args.n_two_session,
        duration_s=args.duration_s,
        tr=args.tr,
        n_slices=args.n_slices,
        sfreq=args.sfreq,
        seed=args.seed,
        marker=args.marker,
        easy=args.easy,
        n_jobs=args.jobs,
        progress=not args.quiet,
    )
    print(f"simulated dataset written to {args.bids_root}")
    return 0


def _runs(args) -> int:
    from .bids import find_runs

    found = find_runs(
        args.bids_root,
        fmriprep_dir=args.fmriprep_dir,
        space=args.space,
        subjects=args.subjects,
        sessions=args.sessions,
        tasks=args.tasks,
    )
    print(found.summary())
    return 0 if found.runs else 1


def _predict(args) -> int:
    from pathlib import Path

    import yaml

    from .jobs.predict import predict_eeg_file
    from .predict import recording_name

    config = {}
    if args.config:
        config = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
    options = dict(config.get("predict") or {})
    for key in ("step_s", "tr_s", "gradient", "bcg", "n_slices", "droppable_channels"):
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    for key in ("held_out", "recordings", "intra_scan", "model", "rois"):
        options.pop(key, None)  # workflow choices, not options of one prediction
    fmri = dict(config.get("fmri") or {})
    name = recording_name(args.eeg)
    out = Path(args.out_dir)
    timeseries = out / f"{name}_desc-predicted_timeseries.tsv"
    voxel_map = not args.no_voxel_map and bool(args.atlas_maps or args.atlas_labels or fmri)
    bold = out / f"{name}_desc-predicted_bold.nii.gz" if voxel_map else None
    if not voxel_map and not args.no_voxel_map:
        print("no atlas given (--atlas-maps/--atlas-labels or --config): no voxel map")
    store = config.get("store") or {}
    dummy = args.dummy_markers
    if dummy is None:
        dummy = store.get("dummy_markers", nbconfig.defaults("store.dummy_markers"))
    predict_eeg_file(
        args.eeg,
        models=args.models,
        timeseries=timeseries,
        bold=bold,
        atlas_maps=args.atlas_maps,
        atlas_labels=args.atlas_labels,
        options=options,
        eeg_config=config.get("eeg") or {},
        window_s=store.get("window_s", nbconfig.defaults("store.window_s")),
        dummy_markers=dummy,
        fmri=fmri,
    )
    for path in (timeseries, bold):
        if path is not None:
            print(f"wrote {path}")
    return 0


def _validate(args) -> int:
    from pathlib import Path

    import yaml

    from .provenance import write_text
    from .validate import check_config, validate_dataset

    config: dict = {}
    source = "config"
    findings = []
    if args.configfile:
        source = args.configfile
        config = yaml.safe_load(Path(args.configfile).read_text(encoding="utf-8")) or {}
        findings = check_config(config, source=source)
        if not isinstance(config, dict):
            config = {}
    bids = dict(config.get("bids") or {})
    for key in ("fmriprep_dir", "space", "subjects", "sessions", "tasks"):
        value = getattr(args, key)
        if value is not None:
            bids[key] = value
    config = {**config, "bids": bids}
    root = args.bids_root or bids.get("root")
    if root is None:
        print("neurobolt: error: give BIDS_DIR or a --configfile with bids.root", file=sys.stderr)
        return 2
    report = validate_dataset(
        root, config=config, results_dir=args.results_dir, check_keys=False, source=source
    )
    report.findings[:0] = findings
    ok = report.ok
    print(report.format(), file=sys.stdout if ok else sys.stderr)
    if ok and args.report:
        write_text(args.report, report.table().to_csv(sep="\t", index=False))
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neurobolt`` command."""
    parser = argparse.ArgumentParser(
        prog="neurobolt", description="Predict fMRI ROI signals from simultaneous EEG (NeuroBOLT)."
    )
    parser.add_argument("--version", action="version", version=f"neurobolt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated BIDS EEG-fMRI dataset")
    sim.add_argument("bids_root", help="where to write the dataset")
    # the simulate section's defaults, from the schema (written once)
    sim_defaults = nbconfig.defaults("simulate")
    for flag, kind in [
        ("n_subjects", int),
        ("n_two_session", int),
        ("duration_s", float),
        ("tr", float),
        ("n_slices", int),
        ("sfreq", float),
        ("seed", int),
        ("marker", str),
    ]:
        sim.add_argument("--" + flag.replace("_", "-"), type=kind, default=kind(sim_defaults[flag]))
    sim.add_argument(
        "--easy", action="store_true", help="the simple preset of the unit tests (not realistic)"
    )
    sim.add_argument("--jobs", type=int, default=1, help="runs simulated in parallel")
    sim.add_argument("--quiet", action="store_true", help="no progress bars")
    sim.set_defaults(func=_simulate)

    runs = sub.add_parser("runs", help="list the EEG recordings paired with a BOLD run")
    runs.add_argument("bids_root")
    runs.add_argument("--fmriprep-dir", default=None)
    runs.add_argument("--space", default=nbconfig.defaults("bids.space"))
    runs.add_argument("--subjects", nargs="*", default=None)
    runs.add_argument("--sessions", nargs="*", default=None)
    runs.add_argument("--tasks", nargs="*", default=None)
    runs.set_defaults(func=_runs)

    pred = sub.add_parser(
        "predict",
        help="predict fMRI ROI signals (and a voxel map) from an EEG recording alone",
        description="Clean an EEG recording (gradient removal when it has volume markers, BCG"
        " removal when it has an ECG), cut it into the models' windows and write"
        " <recording>_desc-predicted_timeseries.tsv (+ .json) and, with an atlas,"
        " <recording>_desc-predicted_bold.nii.gz.",
    )
    pred.add_argument("eeg", help="the EEG recording (BIDS _eeg.vhdr/.edf/.bdf/.set)")
    pred.add_argument(
        "--models",
        nargs="+",
        required=True,
        help="trained model.pt files (one per ROI, or one shared-heads model for several ROIs)",
    )
    pred.add_argument("--out-dir", required=True, help="where the outputs are written")
    pred.add_argument(
        "--config",
        help="a neurobolt config YAML: its eeg, predict, store and fmri sections are used",
    )
    pred.add_argument("--step-s", type=float, help="seconds between predictions (>= 1)")
    pred.add_argument("--tr-s", type=float, help="step without volume markers (default 2.1)")
    pred.add_argument("--gradient", choices=["auto", "always", "never"])
    pred.add_argument("--bcg", choices=["auto", "always", "never"])
    pred.add_argument("--n-slices", type=int, help="slices per volume (default: detected)")
    pred.add_argument(
        "--dummy-markers",
        type=int,
        help="volume markers of unsaved dummy scans before the first volume (default: the"
        " config's store.dummy_markers, else 0)",
    )
    pred.add_argument(
        "--droppable-channels", nargs="*", help="training channels the recording may lack"
    )
    pred.add_argument("--atlas-maps", help="4-D atlas maps for the voxel map")
    pred.add_argument("--atlas-labels", help="the atlas labels file")
    pred.add_argument("--no-voxel-map", action="store_true", help="write no voxel map")
    pred.set_defaults(func=_predict)

    val = sub.add_parser(
        "validate",
        help="check a dataset (and a config) before any work: every problem, as one table",
        description="Check every selected run of a BIDS EEG-fMRI dataset (headers, sidecars,"
        " markers, NIfTI headers, fMRIPrep outputs) and the configuration, and list all"
        " problems with how to fix them. Exit status 1 when there is an error.",
    )
    val.add_argument("bids_root", nargs="?", default=None, help="the BIDS dataset")
    val.add_argument("--configfile", default=None, help="a workflow config (YAML) to check too")
    val.add_argument(
        "--results-dir", default=None, help="the output folder (checked, with what it holds)"
    )
    val.add_argument("--fmriprep-dir", default=None)
    val.add_argument("--space", default=None)
    val.add_argument("--subjects", nargs="*", default=None)
    val.add_argument("--sessions", nargs="*", default=None)
    val.add_argument("--tasks", nargs="*", default=None)
    val.add_argument(
        "--report", default=None, help="write the table as TSV here (only when there is no error)"
    )
    val.set_defaults(func=_validate)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommand names of :func:`build_parser`'s parser."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neurobolt`` command.

    ``neurobolt BIDS_DIR OUTPUT_DIR participant|group ...`` runs the workflow as a BIDS App
    (:mod:`neurobolt.app`); ``neurobolt <subcommand> ...`` runs one of the subcommands.
    """
    from .logs import configure

    configure()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    commands = subcommands(parser)
    try:
        if not argv or argv[0] not in commands:
            from .app import run_app

            return run_app(argv, commands=commands)
        args = parser.parse_args(argv)
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"neurobolt: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
