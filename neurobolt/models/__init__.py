"""Model registry: ``build_model(name, **options)``.

Registered names:

``neurobolt``
    LaBraM spatiotemporal branch + multi-scale spectral branch, head Linear(GELU(sum)).
``labram``
    Ablation: LaBraM branch only, head Linear(features) as LaBraM's own fine-tuning.
``spectral``
    Ablation: spectral branch only, head Linear(GELU(features)).
``biot``
    Baseline (the paper's BIOT row): the spectral branch with BIOT's single STFT scale
    (n_fft 200 samples, hop 100) instead of NeuroBOLT's four, head Linear(GELU(features)).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from neurobolt.models.labram import LaBraMConfig, LaBraMEncoder, load_labram_checkpoint
from neurobolt.models.neurobolt import NeuroBOLT, NeuroBOLTConfig, make_config
from neurobolt.models.spectral import SpectralConfig, SpectralEncoder

from .. import config as nbconfig

__all__ = [
    "MODELS",
    "LaBraMConfig",
    "LaBraMEncoder",
    "NeuroBOLT",
    "NeuroBOLTConfig",
    "SpectralConfig",
    "SpectralEncoder",
    "build_model",
    "load_labram_checkpoint",
    "make_config",
]


def _variant(branches: tuple[str, ...], head_activation: str) -> Callable[..., nn.Module]:
    def build(preset: str = nbconfig.defaults("model.preset"), **options) -> nn.Module:
        if "branches" in options and tuple(options["branches"]) != branches:
            raise ValueError(
                f"this model fixes branches={branches}; use 'neurobolt' to choose branches"
            )
        options["branches"] = branches
        options.setdefault("head_activation", head_activation)
        return NeuroBOLT(make_config(preset, **options))

    return build


def _neurobolt(preset: str = nbconfig.defaults("model.preset"), **options) -> nn.Module:
    return NeuroBOLT(make_config(preset, **options))


_spectral = _variant(("spectral",), "gelu")

# BIOT's tokenizer: one STFT of 1 s windows with 50 % overlap.
BIOT_STFT = {"n_fft": (200,), "hop": (100,)}


def _biot(preset: str = nbconfig.defaults("model.preset"), **options) -> nn.Module:
    spectral = dict(options.pop("spectral", None) or {})
    clash = {k: spectral[k] for k in BIOT_STFT if k in spectral and spectral[k] != BIOT_STFT[k]}
    if clash:
        raise ValueError(f"the biot model fixes its STFT to {BIOT_STFT}; got {clash}")
    return _spectral(preset, spectral={**spectral, **BIOT_STFT}, **options)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "neurobolt": _neurobolt,
    "labram": _variant(("labram",), "none"),
    "spectral": _spectral,
    "biot": _biot,
}


def build_model(name: str, **options) -> nn.Module:
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of :data:`MODELS` (``"neurobolt"``, ``"labram"``, ``"spectral"``, ``"biot"``).
    **options
        ``preset`` (``"paper"`` default, or ``"tiny"``) and the overrides accepted by
        :func:`neurobolt.models.neurobolt.make_config` (e.g. ``n_outputs=7``,
        ``n_patches=16``, ``drop_path=0.1``, ``labram={"depth": 4}``).

    Returns
    -------
    model : torch.nn.Module
        Called as ``model(x, ch_names)`` with ``x`` (batch, n_channels, n_patches, 200).
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; registered models: {sorted(MODELS)}")
    return MODELS[name](**options)
