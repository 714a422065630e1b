"""The reports people read: per-subject QC pages and the group ``report.html``.

Both are :class:`mne.Report` pages with static matplotlib figures embedded
(PNG by default), readable from disk without a server.

Per-subject page (``sub-<label>.html``, :mod:`neurobolt.jobs.subject_report`), one
section per run:

* EEG power spectra before artifact removal, after gradient removal and after
  BCG removal, with the slice and volume frequencies marked;
* the average BCG (R-peak-locked) epoch before and after BCG removal;
* volume-marker timing (interval minus TR);
* the ROI signals with the motion confounds;
* predicted vs measured traces on the test split; learning curves;
* tables: the cleaning QC and the run's test metrics.

The EEG figures plot the signals the ``clean_eeg`` stage kept while it cleaned the run
(``<run>_desc-clean_qc.h5``, :mod:`neurobolt.eeg.qc_signals`): nothing is recomputed.

Group page (``report.html``, :mod:`neurobolt.jobs.report`): the Table-1 layout (every
analysis and model, baselines included, with CIs and per-scan and group p), R
distributions per ROI and model, R against the simulator's ceiling (when ground truth
exists), validation vs test R, the inter-subject learning curves, the EEG-only
predictions compared with the measured signals, and links to the subject pages.
Table 1 and the R distributions are also PNG files for ``snakemake --report``
(:mod:`neurobolt.jobs.report_figures`).

Modules: :mod:`.figures` (figures), :mod:`.tables` (tables), :mod:`.signals` (the EEG
figures' data), :mod:`.pages` (the :class:`mne.Report` helpers).
"""

from .figures import (
    ANALYSIS_NAMES,
    MAX_TRACES,
    fig_bcg_epochs,
    fig_held_out,
    fig_learning_curves,
    fig_marker_timing,
    fig_r_distributions,
    fig_r_vs_ceiling,
    fig_roi_confounds,
    fig_spectra,
    fig_table1,
    fig_test_traces,
    fig_val_vs_test,
    save_png,
)
from .pages import in_run, options
from .signals import bcg_epochs, eeg_figure_data, psd
from .tables import eeg_qc_table, read_metrics

__all__ = [
    "ANALYSIS_NAMES",
    "MAX_TRACES",
    "bcg_epochs",
    "eeg_figure_data",
    "eeg_qc_table",
    "fig_bcg_epochs",
    "fig_held_out",
    "fig_learning_curves",
    "fig_marker_timing",
    "fig_r_distributions",
    "fig_r_vs_ceiling",
    "fig_roi_confounds",
    "fig_spectra",
    "fig_table1",
    "fig_test_traces",
    "fig_val_vs_test",
    "in_run",
    "options",
    "psd",
    "read_metrics",
    "save_png",
]
