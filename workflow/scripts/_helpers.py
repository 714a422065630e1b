"""The one helper every workflow script uses: hand Snakemake's job to ``neurobolt.jobs``.

Snakemake puts this folder on ``sys.path`` when it runs a script, so each script is
``from _helpers import run_job; run_job(snakemake, "<job>")``. The neurobolt package
itself is installed (``pip install -e .``, or the conda env's post-deploy step).
"""

import importlib


def run_job(snakemake, job: str, *, limit_threads: bool = False, params=None) -> None:
    """Run ``neurobolt.jobs.<job>.run`` with the rule's named input, output and params.

    Parameters
    ----------
    snakemake : snakemake.script.Snakemake
        The object Snakemake injects into the script.
    job : str
        The module under ``neurobolt.jobs``.
    limit_threads : bool
        Cap torch's and the BLAS thread pools at the rule's ``threads`` first (training,
        evaluation and prediction: parallel jobs would otherwise slow each other down).
    params : dict | None
        The job's params instead of the rule's (a rule without params, e.g.
        ``validate_first``, which must never rerun because its params changed).
    """
    from neurobolt.logs import configure

    configure(snakemake.log[0])
    if limit_threads:
        from neurobolt.runtime import limit_threads as limit

        limit(snakemake.threads)
    module = importlib.import_module(f"neurobolt.jobs.{job}")
    module.run(
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        dict(snakemake.params.items()) if params is None else params,
        threads=snakemake.threads,
    )
