"""Multi-scale spectral encoder of NeuroBOLT, all channels in one batched pass.

For every channel the magnitude STFT is taken at four scales (rectangular windows,
n_fft = hop = 100, 200, 400, 800 samples, not centered, i.e. 0.5-4 s without overlap).
Per scale a Linear maps the frequency bins to ``embed_dim`` and a Linear over the window
axis maps that scale's number of windows to the largest number of windows of any scale (32
for 16 s); the scales are summed. With one scale and an overlapping hop (n_fft 200, hop
100) the same encoder is the BIOT baseline. A learned channel embedding (indexed by the
electrode's name through LaBraM's 10-20 table, so an unseen channel never borrows another's
embedding) and a sinusoidal position encoding of the window index are added, and all
channel x window tokens go through a linear-attention transformer (softmax kernel: queries
normalized over features, keys over tokens); the encoder returns the mean over tokens.

The public implementation computes the STFTs in a Python loop over channels; here one
``rfft`` per scale covers every channel of the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neurobolt.models.labram import (
    LABRAM_CHANNELS,
    Mlp,
    _IndexCache,
    dropout_mask,
    init_linear_and_norm,
    keep_mask,
    mlp_token_mean,
)

__all__ = ["SpectralConfig", "SpectralEncoder", "multiscale_spectra", "sinusoidal_positions"]


@dataclass
class SpectralConfig:
    """Sizes and regularization of the multi-scale spectral encoder.

    Attributes
    ----------
    embed_dim : int
        Token width (200; must equal the LaBraM branch's when both are summed).
    depth : int
        Linear-attention transformer layers (4).
    num_heads : int
        Attention heads (8).
    ff_mult : int
        Feed-forward hidden width relative to ``embed_dim`` (4).
    n_fft : tuple of int
        Window lengths of the STFT scales, in samples, finest first.
    hop : tuple of int or None
        Hop of each scale in samples; None: the window length (no overlap, NeuroBOLT).
        BIOT uses ``n_fft=(200,)``, ``hop=(100,)``.
    n_samples : int
        Samples per channel of one input window (3200 = 16 s at 200 Hz); at least every
        ``n_fft``, and a multiple of it where the hop equals the window length.
    dropout : float
        Dropout on the attention sub-layer's output (0.2).
    pos_dropout : float
        Dropout after adding the channel and position embeddings (0.1).
    norm_eps : float
        LayerNorm epsilon.
    """

    embed_dim: int = 200
    depth: int = 4
    num_heads: int = 8
    ff_mult: int = 4
    n_fft: tuple[int, ...] = (100, 200, 400, 800)
    hop: tuple[int, ...] | None = None
    n_samples: int = 3200
    dropout: float = 0.2
    pos_dropout: float = 0.1
    norm_eps: float = 1e-5

    def __post_init__(self):
        self.n_fft = tuple(int(n) for n in self.n_fft)
        if not self.n_fft:
            raise ValueError("SpectralConfig: n_fft needs at least one scale")
        self.hop = self.n_fft if self.hop is None else tuple(int(h) for h in self.hop)
        if len(self.hop) != len(self.n_fft) or any(h <= 0 for h in self.hop):
            raise ValueError(
                f"SpectralConfig: hop must give one positive hop per n_fft scale; got "
                f"hop={self.hop} for n_fft={self.n_fft}"
            )
        bad = [
            n
            for n, h in zip(self.n_fft, self.hop, strict=True)
            if n <= 0 or n > self.n_samples or (h == n and self.n_samples % n)
        ]
        if bad:
            raise ValueError(
                f"SpectralConfig: n_samples ({self.n_samples}) must be at least every n_fft, "
                f"and a multiple of it where the hop equals n_fft; not so for {bad}"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"SpectralConfig: embed_dim ({self.embed_dim}) must be divisible by num_heads "
                f"({self.num_heads})"
            )
        for name in ("dropout", "pos_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"SpectralConfig: {name} must be in [0, 1), got {value}")

    @property
    def scale_windows(self) -> tuple[int, ...]:
        """STFT windows of each scale."""
        return tuple(
            (self.n_samples - n) // h + 1 for n, h in zip(self.n_fft, self.hop, strict=True)
        )

    @property
    def n_windows(self) -> int:
        """Tokens per channel (the most windows of any scale)."""
        return max(self.scale_windows)


def multiscale_spectra(x: torch.Tensor, n_fft, hop=None) -> list[torch.Tensor]:
    """Magnitude STFTs of every channel at several scales.

    Parameters
    ----------
    x : Tensor, shape (..., n_samples)
        Signals; any leading dimensions (batch, channels) are kept.
    n_fft : sequence of int
        Window length of each scale (rectangular window, not centered).
    hop : sequence of int | None
        Hop of each scale; None: the window length (no overlap).

    Returns
    -------
    spectra : list of Tensor
        One tensor per scale, shaped (..., (n_samples - n) // hop + 1, n // 2 + 1):
        windows x frequency bins, equal to ``torch.stft(..., n_fft=n, hop_length=hop,
        window=None, center=False)`` transposed, in absolute value.
    """
    hop = n_fft if hop is None else hop
    out = []
    for n, h in zip(n_fft, hop, strict=True):
        if h == n:  # no overlap: a reshape, no copy
            n_win = x.shape[-1] // n
            frames = x[..., : n_win * n].reshape(*x.shape[:-1], n_win, n)
        else:
            frames = x.unfold(-1, n, h)
        spectrum = torch.fft.rfft(frames, dim=-1)
        # |z| as hypot(re, im): the same values bit for bit as ``spectrum.abs()``, about
        # twice as fast on CPU (2 % of a tiny-model training step; benchmarks/model_speed.py)
        out.append(torch.hypot(spectrum.real, spectrum.imag))
    return out


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """Transformer sine/cosine position encoding, (n_positions, dim); even columns sine."""
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : dim // 2]
    return pe.float()


class LinearAttention(nn.Module):
    """Non-causal linear attention: softmax(q) over features, softmax(k) over tokens.

    Per head h, with ``q_h = softmax(q_h) * hd**-0.5`` (over its ``hd`` features) and
    ``k_h = softmax(k_h)`` (over the tokens), the output is
    ``proj(concat_h(q_h @ (k_h^T @ v_h)))``. Because the output projection is linear, it is
    folded into the small per-sample context: ``M = blockdiag_h(k_h^T v_h) @ W_proj^T``
    (embed_dim x embed_dim), and the output is ``q @ M + b_proj`` in one batched product.
    This needs no (batch, heads, tokens, head_dim) copies of q, k, v or of the output, and
    no tiny per-head products over all tokens (see :meth:`forward_reference`).
    """

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h, hd = self.num_heads, self.head_dim
        # q, k, v as three products with slices of the fused weight: each comes out
        # contiguous, so neither the softmaxes nor the backward pass copy them.
        w_q, w_k, w_v = self.qkv.weight.split(d)
        q = F.linear(x, w_q).view(b, n, h, hd).softmax(dim=-1).view(b, n, d)
        k = F.linear(x, w_k).view(b, n, h, hd).softmax(dim=1)  # over tokens
        v = F.linear(x, w_v).view(b, n, h, hd)
        # k_h^T v_h for every head: one (B, hd, N) @ (B, N, hd) product per head on
        # strided views (heads are few; batching them would need a copy of k and v);
        # context: (B, H, hd, hd).
        pairs = zip(k.unbind(2), v.unbind(2), strict=True)
        context = torch.stack([torch.bmm(kh.transpose(1, 2), vh) for kh, vh in pairs], dim=1)
        # M[b, h*hd + i, :] = sum_j context[b, h, i, j] * W_proj[:, h*hd + j] * hd**-0.5
        w_proj = self.proj.weight.t().reshape(h, hd, d) * hd**-0.5
        mixed = torch.matmul(context, w_proj).reshape(b, d, d)
        return torch.baddbmm(self.proj.bias.to(q.dtype), q, mixed.to(q.dtype))

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The same function written out head by head (for tests)."""
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, N, hd)
        q = q.softmax(dim=-1) * self.head_dim**-0.5
        k = k.softmax(dim=-2)
        context = k.transpose(-2, -1) @ v  # (B, H, hd, hd)
        return self.proj((q @ context).transpose(1, 2).reshape(b, n, d))


class LinearBlock(nn.Module):
    """Pre-norm residual block: x + attn(LN(x)), then x + ff(LN(x))."""

    def __init__(self, cfg: SpectralConfig):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.attn = LinearAttention(dim, cfg.num_heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.ff = Mlp(dim, dim * cfg.ff_mult)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(self.norm1(x))
        if self.training and self.attn.dropout > 0:  # dropout on the attention output
            p = self.attn.dropout
            return torch.addcmul(x, y, keep_mask(y, p), value=1.0 / (1.0 - p))
        return x + y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._attend(x)
        return x + self.ff(self.norm2(x))

    def forward_mean(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x).mean(dim=1)`` without the per-token output projection of the
        feed-forward (it has no dropout, so the token mean commutes with it)."""
        x = self._attend(x)
        return x.mean(dim=1) + mlp_token_mean(self.ff.fc1, self.ff.fc2, self.norm2(x))


class SpectralEncoder(nn.Module):
    """NeuroBOLT's multi-scale spectral encoder.

    Parameters
    ----------
    config : SpectralConfig | None
        Sizes and regularization; the paper's when None.

    Notes
    -----
    Input ``x`` is (batch, n_channels, n_patches, patch) or (batch, n_channels, n_samples)
    with ``n_patches * patch == config.n_samples``; ``ch_names`` names the channels.
    :meth:`forward_features` returns (batch, embed_dim).
    """

    def __init__(self, config: SpectralConfig | None = None):
        super().__init__()
        cfg = config if config is not None else SpectralConfig()
        self.config = cfg
        dim = cfg.embed_dim
        n_win = cfg.n_windows
        self.freq_proj = nn.ModuleList([nn.Linear(n // 2 + 1, dim) for n in cfg.n_fft])
        self.window_proj = nn.ModuleList([nn.Linear(w, n_win) for w in cfg.scale_windows])
        self.channel_embed = nn.Embedding(len(LABRAM_CHANNELS), dim)
        self.register_buffer("positions", sinusoidal_positions(n_win, dim), persistent=False)
        self.blocks = nn.ModuleList([LinearBlock(cfg) for _ in range(cfg.depth)])
        self._indices = _IndexCache()
        self._encode_impl = self._encode
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As NeuroBOLT: truncated normal (std 0.02) linear weights, zero biases, unit
        LayerNorms; the channel embedding keeps nn.Embedding's N(0, 1)."""
        init_linear_and_norm(self)
        nn.init.normal_(self.channel_embed.weight)

    def enable_compile(self, **kwargs) -> None:
        """Compile the tensor part of the forward pass with ``torch.compile``."""
        self._encode_impl = torch.compile(self._encode, **kwargs)

    def _check_input(self, x: torch.Tensor, ch_names) -> torch.Tensor:
        if x.ndim == 4:
            x = x.reshape(x.shape[0], x.shape[1], -1)
        if x.ndim != 3 or x.shape[-1] != self.config.n_samples:
            raise ValueError(
                f"Spectral encoder input must hold {self.config.n_samples} samples per channel "
                f"((batch, channels, patches, patch) or (batch, channels, samples)); got shape "
                f"{tuple(x.shape)}. Set n_patches to the window length in patches."
            )
        if len(ch_names) != x.shape[1]:
            raise ValueError(f"x has {x.shape[1]} channels but ch_names names {len(ch_names)}")
        return x

    def embed(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Tokens (batch, n_channels * n_windows, embed_dim) before the transformer."""
        b, c, _ = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectra = multiscale_spectra(x.float(), self.config.n_fft, self.config.hop)
        tokens = None
        for spec, freq_proj, window_proj in zip(
            spectra, self.freq_proj, self.window_proj, strict=True
        ):
            h = freq_proj(spec)  # (B, C, W_s, D)
            # Linear over the window axis: (W, W_s) @ (B, C, W_s, D) -> (B, C, W, D)
            h = torch.matmul(window_proj.weight, h) + window_proj.bias[:, None]
            tokens = h if tokens is None else tokens + h
        emb = self.channel_embed(idx)[:, None, :] + self.positions[None]  # (C, W, D)
        tokens = tokens + emb
        if self.training and self.config.pos_dropout > 0:
            tokens = tokens * dropout_mask(tokens, self.config.pos_dropout)
        return tokens.reshape(b, -1, tokens.shape[-1])

    def _encode(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        h = self.embed(x, idx)
        if not len(self.blocks):
            return h.mean(dim=1)
        for block in self.blocks[:-1]:
            h = block(h)
        return self.blocks[-1].forward_mean(h)

    def forward_features(self, x: torch.Tensor, ch_names) -> torch.Tensor:
        """Pooled features (batch, embed_dim) of windows ``x`` with channels ``ch_names``."""
        x = self._check_input(x, ch_names)
        return self._encode_impl(x, self._indices(ch_names, x.device))

    def forward(self, x: torch.Tensor, ch_names) -> torch.Tensor:
        return self.forward_features(x, ch_names)

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay: embeddings, norms, biases."""
        names = {"channel_embed.weight"}
        names.update(n for n, p in self.named_parameters() if p.ndim <= 1)
        return names
