# neurobolt: simultaneous EEG-fMRI (BIDS) -> models that predict fMRI ROI signals from EEG.
# Configuration: config/config.yaml (the demo), validated against
# neurobolt/config.schema.yaml. Rules live in workflow/rules/<stage>.smk; this file
# holds the includes and the two targets: `all` (everything, the BIDS-App group level) and
# `participant` (per-run derivatives and intra-subject models).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
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
