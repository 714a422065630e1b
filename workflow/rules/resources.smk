"""Threads, memory (MB) and runtime (minutes) of each rule's jobs.

Memory grows with the attempt (the SLURM profile retries a job that ran out of it).
"""


def file_mb(path, *, default):
    """Size of a file in MB, or ``default`` while it does not exist yet (dry runs)."""
    path = Path(path)
    return path.stat().st_size / 1e6 if path.exists() else default


def per_attempt(mb):
    """A memory estimate of ``mb`` MB on the first attempt, ``k * mb`` on the k-th retry."""

    def mem_mb(wildcards, attempt):
        return mb * attempt

    return mem_mb


def small_mem_mb(wildcards, attempt):
    """Memory for the bookkeeping rules (tables, JSON): 1 GB, doubled on each retry."""
    return 1000 * attempt


def simulate_threads(sim):
    """Runs simulated in parallel: 2 (one process each), or 1 for a single run."""
    return min(2, sim["n_subjects"] + sim["n_two_session"])


def simulate_mem_mb(sim):
    """Memory for simulating: one run's ~32 channels at the simulation rate as float64, held
    ~3 times over, + 1 GB (measured: 1 GB for 6-minute runs at 5 kHz), per parallel run.
    """
    run_mb = 32 * sim["duration_s"] * sim["sfreq"] * 8 / 1e6
    return per_attempt(int(1000 + 3 * run_mb * simulate_threads(sim)))


def simulate_runtime(sim):
    """Minutes for simulating: 10 + one per minute of recording (measured: ~0.06)."""
    n_runs = sim["n_subjects"] + sim["n_two_session"]
    return per_attempt(int(10 + n_runs * sim["duration_s"] / 60))


def clean_eeg_mem_mb(wildcards, input, attempt):
    """Memory for cleaning: ~3x the recording held as float32 (the .eeg is int16 or float32)."""
    size_mb = file_mb(Path(input.eeg).with_suffix(".eeg"), default=800)
    return int(1500 + 6 * size_mb) * attempt


def clean_eeg_runtime(wildcards, input, attempt):
    """Minutes for cleaning: 10 + 1 per 40 MB of raw EEG (measured: 18 s for 120 MB)."""
    size_mb = file_mb(Path(input.eeg).with_suffix(".eeg"), default=800)
    return int(10 + size_mb / 40) * attempt


def roi_signals_mem_mb(wildcards, input, attempt):
    """Memory for one run: ~3x the BOLD held as float32 (compressed ~2x on disk), + 1 GB."""
    size_mb = file_mb(input.preproc_bold, default=200)
    return int(1000 + 6 * 2 * size_mb) * attempt


def roi_signals_runtime(wildcards, input, attempt):
    """Minutes for one run's ROI signals: 10 + 1 per 20 MB of preprocessed BOLD."""
    return int(10 + file_mb(input.preproc_bold, default=200) / 20) * attempt


def windows_mem_mb(wildcards, input, attempt):
    """Memory for one store: the cleaned EEG read as float64 three times over, + 1 GB."""
    size_mb = file_mb(input.eeg, default=200)
    return int(1000 + 6 * size_mb) * attempt


def windows_runtime(wildcards, input, attempt):
    """Minutes for one store: 5 + 1 per 50 MB of cleaned EEG."""
    return int(5 + file_mb(input.eeg, default=200) / 50) * attempt


#: Scheduling priorities (higher first among the jobs that are ready). The demo's critical
#: path is simulate -> clean_eeg -> windows (all of them) -> train_inter -> evaluate_inter,
#: predict -> group_metrics -> report: the stores come before any training, the
#: inter-subject model (it waits for every store) before the per-scan ones, and the long
#: training jobs before the short evaluations and pages that fill the other core.
PRIORITY = {
    "stores": 3,  # clean_eeg, roi_signals, windows
    "inter": 2,  # train_inter, evaluate_inter, predict, group_metrics, report_figures, report
    "train": 1,  # train_intra, train_transfer
    "other": 0,  # evaluate_intra, evaluate_transfer, subject_report
}


#: Torch threads of a training job plus its data-loader worker processes. The tiny demo
#: model gains little from a second thread, so it trains one job per core instead.
TORCH_THREADS = 1 if config["model"].get("preset") == "tiny" else 2


TRAIN_THREADS = TORCH_THREADS + config["train"]["num_workers"]


def train_mem_mb(wildcards, input, attempt):
    """Memory for training: the paper preset needs ~6 GB on CPU; stores are read lazily."""
    base = 6000 if config["model"].get("preset", "paper") == "paper" else 2000
    return base * attempt


def stores_mb(input):
    """Total size of a job's window stores in MB (10 MB each while they do not exist yet)."""
    names = [name for name in ("stores", "source", "target") if name in input.keys()]
    paths = [path for name in names for path in input[name]]
    return sum(file_mb(path, default=10) for path in paths)


def train_runtime(wildcards, input, attempt):
    """Minutes for training: 15 + 0.1 min per epoch and MB of windows (a GPU epoch over a
    6-minute scan, ~8 MB of store, takes well under a minute; the tiny demo model on CPU too).
    """
    return int(15 + 0.1 * config["train"]["epochs"] * stores_mb(input)) * attempt


def evaluate_runtime(wildcards, input, attempt):
    """Minutes for evaluating: the test-split predictions and the permutation null, + 10."""
    return int(10 + 0.5 * stores_mb(input)) * attempt


def predict_mem_mb(wildcards, input, attempt):
    """Memory: cleaning the recording as clean_eeg does (~6x its data file), the models,
    and the voxel map, back-projected in chunks of ~256 MB whatever the recording's length.
    """
    eeg = Path(input.eeg)
    data = eeg.with_suffix(".eeg") if eeg.suffix.lower() == ".vhdr" else eeg
    return int(2500 + 6 * file_mb(data, default=800)) * attempt
