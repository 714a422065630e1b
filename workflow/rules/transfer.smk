"""Cross-dataset generalisation: zero_shot, finetune and joint models per (ROI, model),
trained on the source dataset and/or the target's training scans, tested on the target's
test scans (see neurobolt.transfer)."""

if TRANSFER:

    rule train_transfer:
        input:
            unpack(get_transfer_inputs),
        output:
            model=RESULTS / "models/{analysis}/roi-{roi}/model-{model}/model.pt",
            splits=RESULTS / "models/{analysis}/roi-{roi}/model-{model}/splits.tsv",
            log=RESULTS / "models/{analysis}/roi-{roi}/model-{model}/log.tsv",
        log:
            "logs/train_transfer/{analysis}/{roi}/{model}.log",
        benchmark:
            "logs/train_transfer/{analysis}/{roi}/{model}.benchmark.tsv"
        wildcard_constraints:
            analysis="|".join(TRANSFER),
        priority: PRIORITY["train"]
        conda:
            ENV
        threads: TRAIN_THREADS
        resources:
            mem_mb=train_mem_mb,
            runtime=train_runtime,
            gpu=1,
        params:
            analysis="{analysis}",
            roi=get_roi_name,
            model_name="{model}",
            model=config["model"],
            train=config["train"],
            generalisation=config["generalisation"],
            source_label=SOURCE,
            target_label=TARGET,
            source_scans=dataset_runs(SOURCE),
            target_scans=dataset_runs(TARGET),
        script:
            "../scripts/train_transfer.py"

    rule evaluate_transfer:
        input:
            model=RESULTS / "models/{analysis}/roi-{roi}/model-{model}/model.pt",
            splits=RESULTS / "models/{analysis}/roi-{roi}/model-{model}/splits.tsv",
            stores=get_transfer_eval_stores,
        output:
            predictions=RESULTS
            / "models/{analysis}/roi-{roi}/model-{model}/predictions.tsv",
            metrics=RESULTS / "models/{analysis}/roi-{roi}/model-{model}/metrics.json",
        log:
            "logs/evaluate_transfer/{analysis}/{roi}/{model}.log",
        benchmark:
            "logs/evaluate_transfer/{analysis}/{roi}/{model}.benchmark.tsv"
        wildcard_constraints:
            analysis="|".join(TRANSFER),
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=train_mem_mb,
            runtime=evaluate_runtime,
        params:
            cfg=config["evaluate"],
            scans=dataset_runs(SOURCE) + dataset_runs(TARGET),
        script:
            "../scripts/evaluate.py"
