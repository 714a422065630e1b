"""Prediction from EEG alone: ROI time series and voxel maps of recordings without fMRI."""


rule predict:
    input:
        unpack(get_predict_inputs),
    output:
        timeseries=RESULTS
        / "{subdir}"
        / "func"
        / "{recording}_desc-predicted_timeseries.tsv",
        sidecar=RESULTS
        / "{subdir}"
        / "func"
        / "{recording}_desc-predicted_timeseries.json",
        bold=RESULTS / "{subdir}" / "func" / "{recording}_desc-predicted_bold.nii.gz",
    log:
        "logs/predict/{subdir}/{recording}.log",
    benchmark:
        "logs/predict/{subdir}/{recording}.benchmark.tsv"
    priority: PRIORITY["inter"]
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=predict_mem_mb,
        runtime=clean_eeg_runtime,  # the recording is cleaned first
    params:
        # The EEG is cleaned as for training (eeg), windows and volumes as in the store,
        # atlas from fmri.
        cfg=config["predict"],
        eeg=config["eeg"],
        window_s=config["store"]["window_s"],
        dummy_markers=config["store"]["dummy_markers"],
        fmri=config["fmri"],
    script:
        "../scripts/predict.py"
