"""fMRI stage: DiFuMo ROI signals, global signal, motion regression, low-pass, normalisation."""


rule roi_signals:
    input:
        unpack(get_roi_signals_inputs),
    output:
        timeseries=RESULTS / "{subdir}" / "func" / f"{{run}}_{ROI_SIGNALS}.tsv",
        sidecar=RESULTS / "{subdir}" / "func" / f"{{run}}_{ROI_SIGNALS}.json",
    log:
        "logs/roi_signals/{subdir}/{run}.log",
    benchmark:
        "logs/roi_signals/{subdir}/{run}.benchmark.tsv"
    priority: PRIORITY["stores"]
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=roi_signals_mem_mb,
        runtime=roi_signals_runtime,
    params:
        cfg=get_dataset_section("fmri"),
    script:
        "../scripts/roi_signals.py"
