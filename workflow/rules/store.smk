"""Window store: the cleaned EEG, the volume onsets and the ROI targets in one HDF5 per run."""


rule windows:
    input:
        eeg=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_eeg.vhdr",
        rois=RESULTS / "{subdir}" / "func" / f"{{run}}_{ROI_SIGNALS}.tsv",
    output:
        store=RESULTS / "{subdir}" / "func" / "{run}_windows.h5",
    log:
        "logs/windows/{subdir}/{run}.log",
    benchmark:
        "logs/windows/{subdir}/{run}.benchmark.tsv"
    priority: PRIORITY["stores"]
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=windows_mem_mb,
        runtime=windows_runtime,
    params:
        cfg=get_dataset_section("store"),
        volume_marker=get_volume_marker,
    script:
        "../scripts/windows.py"
