"""The built-in simulator: a BIDS EEG-fMRI dataset with known ground truth."""

# Only with simulate.enabled: a dataset given as input is never written to.
if SIMULATE:

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
            mem_mb=simulate_mem_mb,
            runtime=simulate_runtime,
        params:
            cfg=config["simulate"],
        script:
            "../scripts/simulate.py"
