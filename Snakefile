# neurobolt: simultaneous EEG-fMRI (BIDS) -> models that predict fMRI ROI signals from EEG.
# Configuration: config/config.yaml (the demo), validated against
# neurobolt/config.schema.yaml. The shared definitions live in workflow/rules/{config,
# paths,resources,inputs,targets}.smk, the rules in workflow/rules/<stage>.smk; this file
# holds the includes and the two targets: `all` (everything, the BIDS-App group level) and
# `participant` (per-run derivatives and intra-subject models). ARCHITECTURE.md: the layers.
import os

from snakemake.utils import min_version

min_version("9.0")

# The repository the conda env's post-deploy step installs neurobolt from
# (envs/neurobolt.post-deploy.sh, `snakemake --use-conda`): set here, for that script
# (the user never sets it, so it is no `envvars:` requirement).
os.environ.update(NEUROBOLT_SOURCE=workflow.basedir)


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/config.smk"
include: "workflow/rules/paths.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/bids.smk"
include: "workflow/rules/eeg.smk"
include: "workflow/rules/fmri.smk"
include: "workflow/rules/store.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


rule participant:
    input:
        participant_outputs(),
