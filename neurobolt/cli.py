"""The ``neurobolt`` command line.

``neurobolt BIDS_DIR OUTPUT_DIR participant|group`` runs the whole workflow (a BIDS App, see
:mod:`neurobolt.app`); the subcommands simulate a dataset and list the paired runs of one.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neurobolt`` command."""
    parser = argparse.ArgumentParser(
        prog="neurobolt", description="Predict fMRI ROI signals from simultaneous EEG (NeuroBOLT)."
    )
    parser.add_argument("--version", action="version", version=f"neurobolt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated BIDS EEG-fMRI dataset")
    sim.add_argument("bids_root", help="where to write the dataset")
    sim.add_argument("--n-subjects", type=int, default=4)
    sim.add_argument("--n-two-session", type=int, default=1)
    sim.add_argument("--duration-s", type=float, default=360.0)
    sim.add_argument("--tr", type=float, default=2.1)
    sim.add_argument("--n-slices", type=int, default=30)
    sim.add_argument("--sfreq", type=float, default=5000.0)
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--marker", default="R128")
    sim.add_argument("--quiet", action="store_true", help="no progress bars")
    sim.set_defaults(func=_simulate)

    runs = sub.add_parser("runs", help="list the EEG recordings paired with a BOLD run")
    runs.add_argument("bids_root")
    runs.add_argument("--fmriprep-dir", default=None)
    runs.add_argument("--space", default="MNI152NLin6Asym")
    runs.add_argument("--subjects", nargs="*", default=None)
    runs.add_argument("--sessions", nargs="*", default=None)
    runs.add_argument("--tasks", nargs="*", default=None)
    runs.set_defaults(func=_runs)
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
