"""The reports people read: per-subject QC pages and the group report.html."""


rule subject_report:
    input:
        unpack(subject_report_inputs),
    output:
        html=RESULTS / "{page}.html",
    log:
        "logs/subject_report/{page}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=per_attempt(3000),
        runtime=30,
    params:
        runs=subject_runs,
        subject=subject_label,
        cfg=config["report"],
        eeg=subject_section("eeg"),
        rois=MODEL_ROIS,
        confounds=config["fmri"]["confounds"],
    script:
        "../scripts/subject_report.py"


rule report:
    input:
        unpack(report_inputs),
    output:
        html=RESULTS / "report.html",
    log:
        "logs/report/report.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=20,
    params:
        cfg=config["report"],
        atlas=config["fmri"]["atlas"],
    script:
        "../scripts/report.py"
