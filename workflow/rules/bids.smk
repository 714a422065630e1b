"""Run discovery and the derivative dataset's description."""


localrules:
    runs_table,
    dataset_description,


rule runs_table:
    input:
        raw_inputs,
    output:
        tsv=report(
            RESULTS / "runs.tsv",
            caption="../report/runs.rst",
            category="Data",
        ),
        json=RESULTS / "runs.json",
    log:
        "logs/runs_table/runs_table.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=10,
    params:
        cfg=config["bids"],
    script:
        "../scripts/runs_table.py"


rule dataset_description:
    output:
        json=RESULTS / "dataset_description.json",
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
    script:
        "../scripts/dataset_description.py"
