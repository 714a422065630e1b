"""Validation: the configuration and every selected run checked before any heavy work."""


localrules:
    validate,
    validate_first,


rule validate:
    input:
        raw=get_raw_inputs,
        first=ancient(FIRST_VALIDATION),
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


rule validate_first:
    input:
        simulated=get_first_validation_inputs,
    output:
        tsv=FIRST_VALIDATION,
    log:
        "logs/validate_first/validate_first.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=10,
    script:
        "../scripts/validate.py"
