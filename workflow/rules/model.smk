"""Training and evaluation: per (scan, ROI, model) intra-subject and per (ROI, model)
inter-subject with model.heads: per_roi; per (scan, model) and per model, every ROI at once,
with model.heads: shared. Either way each ROI's predictions.tsv and metrics.json land in
models/<analysis>/[<run>/]roi-<label>/model-<model>/."""


localrules:
    group_metrics,


rule train_intra:
    input:
        stores=get_store,
    output:
        model=RESULTS / f"models/intra/{{run}}/{TRAIN_UNIT}/model-{{model}}/model.pt",
        splits=RESULTS / f"models/intra/{{run}}/{TRAIN_UNIT}/model-{{model}}/splits.tsv",
        log=RESULTS / f"models/intra/{{run}}/{TRAIN_UNIT}/model-{{model}}/log.tsv",
    log:
        f"logs/train_intra/{{run}}/{LOG_UNIT}/{{model}}.log",
    benchmark:
        f"logs/train_intra/{{run}}/{LOG_UNIT}/{{model}}.benchmark.tsv"
    priority: PRIORITY["train"]
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=1,
    params:
        analysis="intra",
        rois=get_train_rois,
        model_name="{model}",
        model=config["model"],
        train=config["train"],
        scans=get_intra_scans,
    script:
        "../scripts/train.py"


rule evaluate_intra:
    input:
        model=RESULTS / f"models/intra/{{run}}/{TRAIN_UNIT}/model-{{model}}/model.pt",
        splits=RESULTS / f"models/intra/{{run}}/{TRAIN_UNIT}/model-{{model}}/splits.tsv",
        stores=get_store,
    output:
        predictions=[
            RESULTS
            / f"models/intra/{{run}}/roi-{label}/model-{{model}}/predictions.tsv"
            for label in EVAL_LABELS
        ],
        metrics=[
            RESULTS / f"models/intra/{{run}}/roi-{label}/model-{{model}}/metrics.json"
            for label in EVAL_LABELS
        ],
    log:
        f"logs/evaluate_intra/{{run}}/{LOG_UNIT}/{{model}}.log",
    benchmark:
        f"logs/evaluate_intra/{{run}}/{LOG_UNIT}/{{model}}.benchmark.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=evaluate_runtime,
    params:
        cfg=config["evaluate"],
        scans=get_intra_scans,
    script:
        "../scripts/evaluate.py"


rule train_inter:
    input:
        stores=get_all_stores,
    output:
        model=RESULTS / f"models/inter/{TRAIN_UNIT}/model-{{model}}/model.pt",
        splits=RESULTS / f"models/inter/{TRAIN_UNIT}/model-{{model}}/splits.tsv",
        log=RESULTS / f"models/inter/{TRAIN_UNIT}/model-{{model}}/log.tsv",
    log:
        f"logs/train_inter/{LOG_UNIT}/{{model}}.log",
    benchmark:
        f"logs/train_inter/{LOG_UNIT}/{{model}}.benchmark.tsv"
    priority: PRIORITY["inter"]
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=1,
    params:
        analysis="inter",
        rois=get_train_rois,
        model_name="{model}",
        model=config["model"],
        train=config["train"],
    script:
        "../scripts/train.py"


rule evaluate_inter:
    input:
        model=RESULTS / f"models/inter/{TRAIN_UNIT}/model-{{model}}/model.pt",
        splits=RESULTS / f"models/inter/{TRAIN_UNIT}/model-{{model}}/splits.tsv",
        stores=get_all_stores,
    output:
        predictions=[
            RESULTS / f"models/inter/roi-{label}/model-{{model}}/predictions.tsv"
            for label in EVAL_LABELS
        ],
        metrics=[
            RESULTS / f"models/inter/roi-{label}/model-{{model}}/metrics.json"
            for label in EVAL_LABELS
        ],
    log:
        f"logs/evaluate_inter/{LOG_UNIT}/{{model}}.log",
    benchmark:
        f"logs/evaluate_inter/{LOG_UNIT}/{{model}}.benchmark.tsv"
    priority: PRIORITY["inter"]
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
        metrics=get_model_metrics(),
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
    priority: PRIORITY["inter"]
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
