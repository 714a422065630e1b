"""NeuroBOLT: LaBraM spatiotemporal branch + multi-scale spectral branch + linear head.

``features = labram(x) + spectral(x)``; ``output = Linear(GELU(features))`` with one value
per target (ROI). The single-branch ablations (``labram``, ``spectral``) are the same class
with one branch switched off.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from neurobolt.models.labram import LaBraMConfig, LaBraMEncoder
from neurobolt.models.spectral import SpectralConfig, SpectralEncoder

from .. import config as nbconfig

__all__ = ["PRESETS", "NeuroBOLT", "NeuroBOLTConfig", "make_config"]

BRANCHES = ("labram", "spectral")


@dataclass
class NeuroBOLTConfig:
    """Configuration of :class:`NeuroBOLT`.

    Attributes
    ----------
    n_outputs : int
        Values predicted per window (one per target ROI).
    branches : tuple of str
        Encoders to use: ``("labram", "spectral")`` for NeuroBOLT, one of them for an
        ablation.
    head_activation : str
        ``"gelu"`` (NeuroBOLT: Linear(GELU(features))) or ``"none"`` (Linear(features), as
        LaBraM's own fine-tuning head).
    head_init_scale : float
        Factor applied to the head's initial weights and bias (0.001).
    autocast_bf16 : bool
        Run the forward pass under bfloat16 autocast (meant for GPUs; output is float32).
    compile : bool
        Compile the encoders with ``torch.compile``.
    labram, spectral : LaBraMConfig, SpectralConfig
        Branch configurations.
    """

    n_outputs: int = 1
    branches: tuple[str, ...] = BRANCHES
    head_activation: str = "gelu"
    head_init_scale: float = 0.001
    autocast_bf16: bool = False
    compile: bool = False
    labram: LaBraMConfig = field(default_factory=LaBraMConfig)
    spectral: SpectralConfig = field(default_factory=SpectralConfig)

    def __post_init__(self):
        if isinstance(self.labram, dict):
            self.labram = LaBraMConfig(**self.labram)
        if isinstance(self.spectral, dict):
            self.spectral = SpectralConfig(**self.spectral)
        self.branches = tuple(self.branches)
        unknown = [b for b in self.branches if b not in BRANCHES]
        if unknown or not self.branches or len(set(self.branches)) != len(self.branches):
            raise ValueError(
                f"NeuroBOLTConfig: branches must be distinct names from {BRANCHES}, "
                f"got {self.branches}"
            )
        if self.head_activation not in ("gelu", "none"):
            raise ValueError(
                f"NeuroBOLTConfig: head_activation must be 'gelu' or 'none', "
                f"got {self.head_activation!r}"
            )
        if self.n_outputs < 1:
            raise ValueError(f"NeuroBOLTConfig: n_outputs must be >= 1, got {self.n_outputs}")
        if "labram" in self.branches and "spectral" in self.branches:
            if self.labram.embed_dim != self.spectral.embed_dim:
                raise ValueError(
                    f"NeuroBOLTConfig: the branches are summed, so labram.embed_dim "
                    f"({self.labram.embed_dim}) must equal spectral.embed_dim "
                    f"({self.spectral.embed_dim})"
                )
            n_patches = self.spectral.n_samples // self.labram.patch_size
            if n_patches > self.labram.n_time_slots:
                raise ValueError(
                    f"NeuroBOLTConfig: {n_patches} patches per window exceed LaBraM's "
                    f"{self.labram.n_time_slots} temporal-embedding slots"
                )

    @property
    def embed_dim(self) -> int:
        branch = self.labram if "labram" in self.branches else self.spectral
        return branch.embed_dim


# Sizes per preset. "paper": LaBraM-base + the paper's spectral encoder and training
# regularization (dropout 0.1, drop path 0.1). "tiny": a small model for the CPU demo/tests
# (patch still 200 samples = 1 s at 200 Hz).
PRESETS: dict[str, dict] = {
    "paper": {
        "labram": {"dropout": 0.1, "drop_path": 0.1},
        "spectral": {},
    },
    "tiny": {
        "labram": {
            "embed_dim": 100,
            "conv_channels": 4,
            "depth": 2,
            "num_heads": 4,
            "mlp_ratio": 2.0,
            "dropout": 0.1,
            "drop_path": 0.1,
        },
        "spectral": {"embed_dim": 100, "depth": 1, "num_heads": 4, "ff_mult": 2},
    },
}

# Shortcut options of make_config/build_model -> (branch, field); n_patches is special.
SHORTCUTS = {
    "dropout": ("labram", "dropout"),
    "attn_dropout": ("labram", "attn_dropout"),
    "drop_path": ("labram", "drop_path"),
    "layer_scale_init": ("labram", "layer_scale_init"),
    "qkv_bias": ("labram", "qkv_bias"),
    "spectral_dropout": ("spectral", "dropout"),
    "spectral_pos_dropout": ("spectral", "pos_dropout"),
}


def make_config(preset: str = nbconfig.defaults("model.preset"), **options) -> NeuroBOLTConfig:
    """Build a :class:`NeuroBOLTConfig` from a preset and overrides.

    Parameters
    ----------
    preset : str
        ``"paper"`` or ``"tiny"``.
    **options
        Fields of :class:`NeuroBOLTConfig` (``n_outputs``, ``branches``, ``head_activation``,
        ``head_init_scale``, ``autocast_bf16``, ``compile``); ``labram`` / ``spectral``
        dicts of branch fields; ``n_patches`` (patches of 200 samples per window; sets the
        spectral input length); and the shortcuts ``dropout``, ``attn_dropout``,
        ``drop_path``, ``layer_scale_init``, ``qkv_bias`` (LaBraM branch),
        ``spectral_dropout``, ``spectral_pos_dropout``.

    Returns
    -------
    config : NeuroBOLTConfig
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
    branch_opts = {name: dict(PRESETS[preset][name]) for name in BRANCHES}
    for name in BRANCHES:
        extra = options.pop(name, None) or {}
        if not isinstance(extra, dict):
            raise TypeError(f"model option {name!r} must be a dict of {name} fields")
        branch_opts[name].update(extra)
    for key, (branch, fieldname) in SHORTCUTS.items():
        if key in options:
            branch_opts[branch][fieldname] = options.pop(key)
    n_patches = options.pop("n_patches", None)
    if n_patches is not None and "spectral" in options.get("branches", BRANCHES):
        patch = branch_opts["labram"].get("patch_size", LaBraMConfig.patch_size)
        branch_opts["spectral"]["n_samples"] = int(n_patches) * patch
    top = {f.name for f in dataclasses.fields(NeuroBOLTConfig)} - set(BRANCHES)
    unknown = sorted(set(options) - top)
    if unknown:
        valid = sorted(top | set(BRANCHES) | set(SHORTCUTS) | {"n_patches"})
        raise TypeError(f"Unknown model option(s) {unknown}; valid options: {valid}")
    for name, cls in (("labram", LaBraMConfig), ("spectral", SpectralConfig)):
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(branch_opts[name]) - fields)
        if bad:
            raise TypeError(f"Unknown {name} option(s) {bad}; valid: {sorted(fields)}")
    return NeuroBOLTConfig(
        labram=LaBraMConfig(**branch_opts["labram"]),
        spectral=SpectralConfig(**branch_opts["spectral"]),
        **options,
    )


class NeuroBOLT(nn.Module):
    """EEG window -> fMRI ROI values.

    Parameters
    ----------
    config : NeuroBOLTConfig | None
        Model configuration; the paper's when None.

    Notes
    -----
    ``model(x, ch_names)`` maps ``x`` shaped (batch, n_channels, n_patches, 200), EEG in
    µV/100 at 200 Hz with channels named ``ch_names`` (any subset of LaBraM's 10-20 table,
    any order), to (batch, n_outputs). ``forward_features`` returns the summed branch
    features (batch, embed_dim) before the head.
    """

    def __init__(self, config: NeuroBOLTConfig | None = None):
        super().__init__()
        cfg = config if config is not None else NeuroBOLTConfig()
        self.config = cfg
        self.labram = LaBraMEncoder(cfg.labram) if "labram" in cfg.branches else None
        self.spectral = SpectralEncoder(cfg.spectral) if "spectral" in cfg.branches else None
        self.head = nn.Linear(cfg.embed_dim, cfg.n_outputs)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.weight.mul_(cfg.head_init_scale)
            self.head.bias.mul_(cfg.head_init_scale)
        if cfg.compile:
            for branch in (self.labram, self.spectral):
                if branch is not None:
                    branch.enable_compile()

    @property
    def num_layers(self) -> int:
        """Transformer blocks of the LaBraM branch (0 without it); layer ids for layer-wise
        lr decay run from 0 to ``num_layers + 1``."""
        return self.labram.num_layers if self.labram is not None else 0

    def layer_id_for(self, name: str) -> int:
        """Layer id of parameter ``name`` (as in ``named_parameters()``) for layer-wise lr
        decay: LaBraM's rule inside ``labram.*``, the top id (``num_layers + 1``) for the
        spectral branch and the head. The lr scale is ``decay ** (num_layers + 1 - id)``."""
        if self.labram is not None and name.startswith("labram."):
            return self.labram.layer_id_for(name[len("labram.") :])
        return self.num_layers + 1

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay (embeddings, norms, biases, layer
        scales)."""
        names = {n for n, p in self.named_parameters() if p.ndim <= 1}
        for prefix, branch in (("labram.", self.labram), ("spectral.", self.spectral)):
            if branch is not None:
                names.update(prefix + n for n in branch.no_weight_decay())
        return names

    def forward_features(self, x: torch.Tensor, ch_names) -> torch.Tensor:
        """Summed branch features (batch, embed_dim)."""
        with torch.autocast(
            device_type=x.device.type, dtype=torch.bfloat16, enabled=self.config.autocast_bf16
        ):
            feats = None
            if self.labram is not None:
                feats = self.labram.forward_features(x, ch_names)
            if self.spectral is not None:
                spec = self.spectral.forward_features(x, ch_names)
                feats = spec if feats is None else feats + spec
        return feats.float()

    def forward(self, x: torch.Tensor, ch_names) -> torch.Tensor:
        feats = self.forward_features(x, ch_names)
        if self.config.head_activation == "gelu":
            feats = F.gelu(feats)
        return self.head(feats)
