"""Training and evaluation: per (scan, ROI, model) intra-subject, per (ROI, model) inter-subject."""


localrules:
    group_metrics,


rule train_intra:
    input:
        stores=store_of,
    output:
        model=RESULTS / "models/intra/{run}/roi-{roi}/model-{model}/model.pt",
        splits=RESULTS / "models/intra/{run}/roi-{roi}/model-{model}/splits.tsv",
        log=RESULTS / "models/intra/{run}/roi-{roi}/model-{model}/log.tsv",
    log:
        "logs/train_intra/{run}/{roi}/{model}.log",
    benchmark:
        "logs/train_intra/{run}/{roi}/{model}.benchmark.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=1,
    params:
        analysis="intra",
        roi=roi_name,
        model_name="{model}",
        model=config["model"],
        train=config["train"],
        scans=intra_scans,
    script:
        "../scripts/train.py"


rule evaluate_intra:
    input:
        model=RESULTS / "models/intra/{run}/roi-{roi}/model-{model}/model.pt",
        splits=RESULTS / "models/intra/{run}/roi-{roi}/model-{model}/splits.tsv",
        stores=store_of,
    output:
        predictions=RESULTS
        / "models/intra/{run}/roi-{roi}/model-{model}/predictions.tsv",
        metrics=RESULTS / "models/intra/{run}/roi-{roi}/model-{model}/metrics.json",
    log:
        "logs/evaluate_intra/{run}/{roi}/{model}.log",
    benchmark:
        "logs/evaluate_intra/{run}/{roi}/{model}.benchmark.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=evaluate_runtime,
    params:
        cfg=config["evaluate"],
        scans=intra_scans,
    script:
        "../scripts/evaluate.py"


rule train_inter:
    input:
        stores=all_stores,
    output:
        model=RESULTS / "models/inter/roi-{roi}/model-{model}/model.pt",
        splits=RESULTS / "models/inter/roi-{roi}/model-{model}/splits.tsv",
        log=RESULTS / "models/inter/roi-{roi}/model-{model}/log.tsv",
    log:
        "logs/train_inter/{roi}/{model}.log",
    benchmark:
        "logs/train_inter/{roi}/{model}.benchmark.tsv"
    priority: 1  # the longest jobs: started first, they shorten the whole run
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=1,
    params:
        analysis="inter",
        roi=roi_name,
        model_name="{model}",
        model=config["model"],
        train=config["train"],
    script:
        "../scripts/train.py"


rule evaluate_inter:
    input:
        model=RESULTS / "models/inter/roi-{roi}/model-{model}/model.pt",
        splits=RESULTS / "models/inter/roi-{roi}/model-{model}/splits.tsv",
        stores=all_stores,
    output:
        predictions=RESULTS / "models/inter/roi-{roi}/model-{model}/predictions.tsv",
        metrics=RESULTS / "models/inter/roi-{roi}/model-{model}/metrics.json",
    log:
        "logs/evaluate_inter/{roi}/{model}.log",
    benchmark:
        "logs/evaluate_inter/{roi}/{model}.benchmark.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=evaluate_runtime,
    params:
        cfg=config["evaluate"],
    script:
        "../scripts/evaluate.py"


rule group_metrics:
    input:
        metrics=model_metrics(),
    output:
        **GROUP_EXTRA,
        metrics=report(
            RESULTS / "group" / "metrics.tsv",
            caption="../report/metrics.rst",
            category="Results",
        ),
        table=report(
            RESULTS / "group" / "table.tsv",
            caption="../report/table.rst",
            category="Results",
        ),
    log:
        "logs/group_metrics/group_metrics.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=10,
    params:
        cfg=config["evaluate"],
    script:
        "../scripts/group_metrics.py"
