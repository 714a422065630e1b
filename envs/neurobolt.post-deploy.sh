#!/usr/bin/env bash
# Snakemake runs this once inside the conda env of envs/neurobolt.yaml, right after creating
# it (`snakemake --use-conda`): it installs the neurobolt package, without its dependencies
# (the env file pins them), from the repository whose Snakefile runs the workflow. The
# Snakefile exports that repository's path as NEUROBOLT_SOURCE (Snakemake runs a copy of
# this script, so the script cannot find the repository itself). Editable, as in the
# README's virtual environment: the rules import the checkout's library.
set -euo pipefail
if [ -z "${NEUROBOLT_SOURCE:-}" ]; then
    echo "NEUROBOLT_SOURCE is not set: create the env through the Snakefile" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation --editable "${NEUROBOLT_SOURCE}"
