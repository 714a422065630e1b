"""fMRI stage: DiFuMo ROI signals and the global signal as model targets.

See :mod:`neurobolt.fmri.atlas` (finding the atlas, matching ROI names),
:mod:`neurobolt.fmri.signals` (extraction), :mod:`neurobolt.fmri.filters` (regression,
low-pass, normalisation), :mod:`neurobolt.fmri.inputs` (confounds, BOLD space and TR,
masks) and :mod:`neurobolt.fmri.whole_brain` (``fmri.rois: all``). The ``roi_signals``
rule's file I/O is :mod:`neurobolt.jobs.roi_signals`.
"""
