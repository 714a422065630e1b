"""The job layer: one module per workflow rule, holding all file I/O, sidecars and provenance.

Each module exposes ``run(inputs, outputs, params, ...)`` called by the rule's thin script
(``workflow/scripts/<rule>.py`` through ``workflow/scripts/_helpers.py``) and usable without
Snakemake. Stage modules (``neurobolt.eeg``, ``neurobolt.fmri``, ``neurobolt.store``,
``neurobolt.models`` ...) hold the pure functions the jobs call; they never import a job.
"""
