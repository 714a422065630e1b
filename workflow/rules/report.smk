"""The reports people read: per-subject QC pages and the group report.html."""


rule subject_report:
    input:
        unpack(get_subject_report_inputs),
    output:
        html=RESULTS / "{page}.html",
        # the page's QC figures as files too: items of `snakemake --report`
        figures=report(
            directory(RESULTS / "{page}" / "figures"),
            patterns=["{figure}.png"],
            caption="../report/subject_qc.rst",
            category="Subject QC",
            subcategory="{page}",
            labels={"figure": "{figure}"},
        ),
    log:
        "logs/subject_report/{page}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=per_attempt(3000),
        runtime=30,
    params:
        runs=get_subject_runs,
        subject=get_subject_label,
        cfg=config["report"],
        eeg=get_subject_section("eeg"),
        rois=MODEL_ROIS,
        confounds=config["fmri"]["confounds"],
    script:
        "../scripts/subject_report.py"


rule report:
    input:
        unpack(get_report_inputs),
    output:
        html=RESULTS / "report.html",
    log:
        "logs/report/report.log",
    priority: PRIORITY["inter"]
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=20,
    params:
        cfg=config["report"],
        control_rois=config["evaluate"].get("control_rois", ["Cerebellum Crus II"]),
        atlas=config["fmri"]["atlas"],
    script:
        "../scripts/report.py"


# Table 1 and the R distributions as figures, for `snakemake --report`
# (report.html embeds its own).
rule report_figures:
    input:
        metrics=RESULTS / "group" / "metrics.tsv",
        table=RESULTS / "group" / "table.tsv",
    output:
        **{
            f"r_{analysis}": report(
                REPORT_FIGURES[f"r_{analysis}"],
                caption="../report/r_distributions.rst",
                category="Results",
                subcategory="Figures",
                labels={"figure": f"R distributions ({analysis})"},
            )
            for analysis in ANALYSES
        },
        table1=report(
            REPORT_FIGURES["table1"],
            caption="../report/table1_figure.rst",
            category="Results",
            subcategory="Figures",
            labels={"figure": "Table 1"},
        ),
    log:
        "logs/report_figures/report_figures.log",
    priority: PRIORITY["inter"]
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=small_mem_mb,
        runtime=10,
    params:
        cfg=config["report"],
    script:
        "../scripts/report_figures.py"
