"""Run discovery and the derivative dataset's description."""


localrules:
    dataset_description,


# One runs table per dataset: `runs_table` (<results>/runs.tsv) for the single dataset,
# `runs_table_<label>` (<results>/<label>/runs.tsv) for each of several.
for _label, _view in VIEWS.items():

    rule:
        name:
            f"runs_table_{_label}" if _label else "runs_table"
        input:
            raw=get_dataset_raw_inputs(_label),
        output:
            tsv=report(
                RESULTS / _label / "runs.tsv",
                caption="../report/runs.rst",
                category="Data",
            ),
            json=RESULTS / _label / "runs.json",
        log:
            f"logs/runs_table/{_label or 'runs_table'}.log",
        localrule: True
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=small_mem_mb,
            runtime=10,
        params:
            cfg=_view["bids"],
        script:
            "../scripts/runs_table.py"


# The derivative root's files: dataset_description.json (GeneratedBy with CodeURL, the
# source dataset relative to it), the atlas description of the ROI-signal files'
# atlas-<label> entity, and .bidsignore (neurobolt's files that no BIDS rule covers).
rule dataset_description:
    output:
        json=RESULTS / "dataset_description.json",
        atlas=RESULTS / f"atlas-{nbderiv.ATLAS_LABEL}_description.json",
        bidsignore=RESULTS / ".bidsignore",
    log:
        "logs/dataset_description/dataset_description.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=5,
    params:
        cfg=config["bids"],
        atlas=config["fmri"]["atlas"],
        simulated=atlas_is_simulated(),
    script:
        "../scripts/dataset_description.py"
