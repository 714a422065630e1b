"""Validation: the configuration and every selected run checked before any heavy work."""


localrules:
    validate,


rule validate:
    input:
        raw_inputs,
    output:
        tsv=VALIDATED,
    log:
        "logs/validate/validate.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=10,
    params:
        cfg=validate_config(),
    script:
        "../scripts/validate.py"
