"""EEG stage: gradient and BCG artifact removal, channel selection, 200 Hz resampling."""


rule clean_eeg:
    input:
        unpack(get_clean_eeg_inputs),
    output:
        eeg=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_eeg.vhdr",
        eeg_data=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_eeg.eeg",
        vmrk=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_eeg.vmrk",
        channels=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_channels.tsv",
        sidecar=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_eeg.json",
        qc=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_qc.json",
        # the signals the subject page plots (spectra, BCG epochs, markers)
        qc_signals=RESULTS / "{subdir}" / "eeg" / "{run}_desc-clean_qc.h5",
    log:
        "logs/clean_eeg/{subdir}/{run}.log",
    benchmark:
        "logs/clean_eeg/{subdir}/{run}.benchmark.tsv"
    priority: PRIORITY["stores"]
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=clean_eeg_mem_mb,
        runtime=clean_eeg_runtime,
    params:
        cfg=get_dataset_section("eeg"),
        dummy_markers=get_dummy_markers,
    script:
        "../scripts/clean_eeg.py"
