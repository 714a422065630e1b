"""The built-in simulator: a BIDS EEG-fMRI dataset with known ground truth."""

# Only for datasets with simulate.enabled: a dataset given as input is never written to.
# One rule per simulated dataset: `simulate` for the single dataset, `simulate_<label>`.
for _label, _view in VIEWS.items():
    if not _view["simulate"]["enabled"]:
        continue

    rule:
        name:
            f"simulate_{_label}" if _label else "simulate"
        output:
            done=nbsim.simulation_json(Path(_view["bids"]["root"])),
            files=simulated_files(_view),
        log:
            f"logs/simulate/{_label or 'simulate'}.log",
        benchmark:
            f"logs/simulate/{_label or 'simulate'}.benchmark.tsv"
        conda:
            ENV
        threads: simulate_threads(_view["simulate"])
        resources:
            mem_mb=simulate_mem_mb(_view["simulate"]),
            runtime=simulate_runtime(_view["simulate"]),
        params:
            cfg=_view["simulate"],
        script:
            "../scripts/simulate.py"
