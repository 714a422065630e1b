"""The built-in simulator: a BIDS EEG-fMRI dataset with known ground truth."""


rule simulate:
    output:
        done=nbsim.simulation_json(BIDS_ROOT),
        files=simulated_files(),
    log:
        "logs/simulate/simulate.log",
    benchmark:
        "logs/simulate/simulate.benchmark.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        cfg=config["simulate"],
    script:
        "../scripts/simulate.py"
