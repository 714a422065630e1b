"""LaBraM spatiotemporal encoder, checkpoint-compatible with the public ``labram-base.pth``.

The encoder follows the LaBraM-base architecture (Jiang et al., ICLR 2024) as used by
NeuroBOLT: a temporal-convolution patch embedding turns every 1 s patch (200 samples at
200 Hz) of every channel into one token, a learned positional embedding indexed by the
electrode's position in LaBraM's 10-20 channel table and a learned temporal embedding are
added, a cls token is prepended, and a stack of pre-norm transformer blocks (q/k LayerNorm,
layer scale, stochastic depth) is followed by mean pooling of the patch tokens and a
LayerNorm.

Parameter names equal the public implementation's ``labram_base_patch200_200`` keys, so a
pretrained state dict loads by name (:func:`load_labram_checkpoint`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neurobolt.channels import LABRAM_CHANNELS

__all__ = [
    "LABRAM_CHANNELS",
    "CheckpointReport",
    "LaBraMConfig",
    "LaBraMEncoder",
    "channel_indices",
    "load_labram_checkpoint",
]

# LaBraM's 10-20 channel table lives in the torch-free neurobolt.channels (the simulator
# uses it); re-exported here.
_CHANNEL_INDEX = {name.upper(): i for i, name in enumerate(LABRAM_CHANNELS)}


def channel_indices(ch_names) -> list[int]:
    """Map electrode names to their index in :data:`LABRAM_CHANNELS`.

    Parameters
    ----------
    ch_names : sequence of str
        Electrode names, any subset of the table in any order; matching ignores case
        (``"Fp1"`` is ``"FP1"``).

    Returns
    -------
    indices : list of int
        Index of each name in :data:`LABRAM_CHANNELS` (the positional slot is index + 1).

    Raises
    ------
    ValueError
        If a name is not in the table (the message lists the known names) or a name
        appears twice.
    """
    if isinstance(ch_names, str):
        raise TypeError(
            f"ch_names must be a sequence of channel names, got the string {ch_names!r}"
        )
    names = [str(name) for name in ch_names]
    unknown = [name for name in names if name.upper() not in _CHANNEL_INDEX]
    if unknown:
        raise ValueError(
            f"Unknown EEG channel name(s) {unknown}: LaBraM's positional embedding knows only "
            f"its 10-20 channel table (case-insensitive); rename or drop these channels. "
            f"Known names: {', '.join(LABRAM_CHANNELS)}"
        )
    upper = [name.upper() for name in names]
    duplicated = sorted({name for name in upper if upper.count(name) > 1})
    if duplicated:
        raise ValueError(f"Channel name(s) {duplicated} appear more than once in ch_names")
    return [_CHANNEL_INDEX[name] for name in upper]


class _IndexCache:
    """Per-module cache of name tuples -> index tensors on a device."""

    def __init__(self):
        self._cache: dict[tuple, torch.Tensor] = {}

    def __call__(self, ch_names, device) -> torch.Tensor:
        key = (tuple(ch_names), str(device))
        idx = self._cache.get(key)
        if idx is None:
            idx = torch.tensor(channel_indices(ch_names), dtype=torch.long, device=device)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = idx
        return idx


@dataclass
class LaBraMConfig:
    """Sizes and regularization of the LaBraM encoder.

    Attributes
    ----------
    embed_dim : int
        Token width; must equal ``conv_channels * patch_size / 8`` (the temporal
        convolution has stride 8). LaBraM-base: 200.
    depth : int
        Number of transformer blocks (LaBraM-base: 12).
    num_heads : int
        Attention heads (LaBraM-base: 10).
    mlp_ratio : float
        Hidden width of the MLP relative to ``embed_dim``.
    conv_channels : int
        Output channels of the temporal convolutions (LaBraM-base: 8; multiple of 4 for
        GroupNorm(4, .)).
    patch_size : int
        Samples per patch; fixed at 200 (1 s at 200 Hz) by the pretrained weights.
    n_time_slots : int
        Slots of the temporal embedding, i.e. the most patches per channel (16).
    qkv_bias : bool
        Learned q and v biases (the k bias is zero). LaBraM-base has none;
        :func:`load_labram_checkpoint` adds them when a checkpoint has them.
    qk_norm : bool
        LayerNorm on queries and keys per head.
    layer_scale_init : float
        Initial value of the per-channel layer scale; 0 disables layer scale.
    dropout : float
        Dropout after the embeddings, the attention projection and the MLP.
    attn_dropout : float
        Dropout on the attention weights.
    drop_path : float
        Stochastic-depth rate of the last block (linearly increasing from 0).
    norm_eps : float
        Epsilon of every LayerNorm.
    """

    embed_dim: int = 200
    depth: int = 12
    num_heads: int = 10
    mlp_ratio: float = 4.0
    conv_channels: int = 8
    patch_size: int = 200
    n_time_slots: int = 16
    qkv_bias: bool = False
    qk_norm: bool = True
    layer_scale_init: float = 0.1
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.0
    norm_eps: float = 1e-6

    def __post_init__(self):
        conv_out = (self.patch_size + 2 * 7 - 15) // 8 + 1
        if self.conv_channels * conv_out != self.embed_dim:
            raise ValueError(
                f"LaBraMConfig: embed_dim ({self.embed_dim}) must equal conv_channels "
                f"({self.conv_channels}) x {conv_out} temporal positions per patch; "
                f"set embed_dim={self.conv_channels * conv_out} or change conv_channels"
            )
        if self.conv_channels % 4:
            raise ValueError(
                f"LaBraMConfig: conv_channels ({self.conv_channels}) must be a multiple of 4 "
                "(GroupNorm with 4 groups)"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"LaBraMConfig: embed_dim ({self.embed_dim}) must be divisible by num_heads "
                f"({self.num_heads})"
            )
        for name in ("dropout", "attn_dropout", "drop_path"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"LaBraMConfig: {name} must be in [0, 1), got {value}")


def dropout_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted-dropout multiplier shaped like ``like``: 0 with probability ``p``, else
    1 / (1 - p). ``y * dropout_mask(y, p)`` is ``F.dropout(y, p)`` in distribution, and
    the mask can be folded into a following multiply-add. Drawn as ``uniform >= p``, which
    on CPU is about 5x faster than ``bernoulli_`` (and F.dropout)."""
    return keep_mask(like, p).mul_(1.0 / (1.0 - p))


def keep_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout's keep mask shaped like ``like``: 0 with probability ``p``, else 1 (the
    1 / (1 - p) of inverted dropout left to the caller, to fold into a small factor or a
    multiply-add's ``value`` instead of one more pass over the mask)."""
    return torch.empty_like(like).uniform_().ge_(p)


# On CPU the MLP runs through _ChunkedMlp: rows (tokens) in chunks of CPU_MLP_CHUNK_ROWS, so
# the hidden activation of a chunk stays in cache between the two products and its GELU, and
# the GELU output is not kept for the backward pass (recomputed there, per chunk, from the
# pre-activation). That halves the MLP's saved memory; on a small machine fresh memory is
# costly (every new page is a fault: ~1 ms of system time per MB here), so this matters as
# much as the arithmetic. Inputs of fewer than CPU_MLP_CHUNK_BYTES hidden bytes go in one
# piece; GPUs and autocast use the plain ``fc2(gelu(fc1(x)))``.
CPU_MLP_CHUNK_BYTES = 4 * 2**20
CPU_MLP_CHUNK_ROWS = 1024


def _row_chunks(x: torch.Tensor, hidden: int):
    """Row chunks of the flattened (rows, features) ``x``, or None to go in one piece."""
    rows = x.numel() // x.shape[-1]
    if x.device.type != "cpu" or rows * hidden * x.element_size() <= CPU_MLP_CHUNK_BYTES:
        return None
    return x.reshape(rows, x.shape[-1]).split(CPU_MLP_CHUNK_ROWS)


def _chunk_bounds(rows: int, step: int) -> list[tuple[int, int]]:
    """(start, stop) of row chunks of at most ``step`` rows, of nearly equal sizes."""
    n = max(1, -(-rows // step))
    edges = [rows * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


class _ChunkedMlp(torch.autograd.Function):
    """``fc2(gelu(fc1(x)))`` on 2-D ``x`` in row chunks, saving only ``x`` and the
    pre-activation ``fc1(x)``; the backward pass recomputes the GELU chunk by chunk and
    accumulates the weight gradients over the chunks. Same arithmetic as the plain MLP."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2):
        rows = x.shape[0]
        pre = torch.empty(rows, w1.shape[0], dtype=x.dtype, device=x.device)
        out = torch.empty(rows, w2.shape[0], dtype=x.dtype, device=x.device)
        for i, j in _chunk_bounds(rows, CPU_MLP_CHUNK_ROWS):
            torch.addmm(b1, x[i:j], w1.t(), out=pre[i:j])
            torch.addmm(b2, F.gelu(pre[i:j]), w2.t(), out=out[i:j])
        ctx.save_for_backward(x, pre, w1, w2)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, pre, w1, w2 = ctx.saved_tensors
        grad = grad.contiguous()
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad
        grad_x = torch.empty_like(x) if need_x else None
        grad_w1 = torch.zeros_like(w1)
        grad_b1 = torch.zeros(w1.shape[0], dtype=x.dtype, device=x.device)
        grad_w2 = torch.zeros_like(w2)
        for i, j in _chunk_bounds(x.shape[0], CPU_MLP_CHUNK_ROWS):
            g = grad[i:j]
            if need_w2:
                grad_w2.addmm_(g.t(), F.gelu(pre[i:j]))
            grad_pre = torch.ops.aten.gelu_backward(g @ w2, pre[i:j])
            grad_w1.addmm_(grad_pre.t(), x[i:j])
            grad_b1.add_(grad_pre.sum(dim=0))
            if need_x:
                torch.mm(grad_pre, w1, out=grad_x[i:j])
        grad_b2 = grad.sum(dim=0) if need_b2 else None
        return (
            grad_x,
            grad_w1 if need_w1 else None,
            grad_b1 if need_b1 else None,
            grad_w2 if need_w2 else None,
            grad_b2,
        )


def mlp_in_chunks(fc1: nn.Linear, fc2: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``fc2(gelu(fc1(x)))``; on CPU in fp32 for large inputs through :class:`_ChunkedMlp`."""
    if (
        _row_chunks(x, fc1.out_features) is None
        or x.dtype != torch.float32
        or fc1.weight.dtype != torch.float32
        or torch.is_autocast_enabled("cpu")
        or torch.compiler.is_compiling()
    ):
        return fc2(F.gelu(fc1(x)))
    flat = x.reshape(-1, x.shape[-1])
    out = _ChunkedMlp.apply(flat, fc1.weight, fc1.bias, fc2.weight, fc2.bias)
    return out.view(*x.shape[:-1], fc2.out_features)


def mlp_token_mean(fc1: nn.Linear, fc2: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``fc2(gelu(fc1(x))).mean(dim=1)`` for x (batch, tokens, dim), exactly, with fc2
    applied once per sample to the mean hidden activation (fc2 is affine)."""
    b, n, _ = x.shape
    per_chunk = max(1, CPU_MLP_CHUNK_ROWS // n) if _row_chunks(x, fc1.out_features) else b
    hidden = [F.gelu(fc1(part)).mean(dim=1) for part in x.split(per_chunk)]
    return fc2(torch.cat(hidden) if len(hidden) > 1 else hidden[0])


class TemporalConv(nn.Module):
    """Temporal-convolution patch embedding: (B, C, P, T) -> (B, C*P, embed_dim)."""

    def __init__(self, out_chans: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, out_chans, kernel_size=(1, 15), stride=(1, 8), padding=(0, 7))
        self.norm1 = nn.GroupNorm(4, out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, kernel_size=(1, 3), padding=(0, 1))
        self.norm2 = nn.GroupNorm(4, out_chans)
        self.conv3 = nn.Conv2d(out_chans, out_chans, kernel_size=(1, 3), padding=(0, 1))
        self.norm3 = nn.GroupNorm(4, out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, p, t = x.shape
        # GroupNorm statistics span all patches of a window (as in LaBraM).
        h = x.reshape(b, 1, c * p, t)
        h = F.gelu(self.norm1(self.conv1(h)))
        h = F.gelu(self.norm2(self.conv2(h)))
        h = F.gelu(self.norm3(self.conv3(h)))
        # (B, K, C*P, T') -> (B, C*P, T' * K): feature index = time * K + conv channel
        return h.permute(0, 2, 3, 1).reshape(b, c * p, -1)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection and q/k LayerNorm."""

    def __init__(self, cfg: LaBraMConfig):
        super().__init__()
        dim = cfg.embed_dim
        self.num_heads = cfg.num_heads
        self.head_dim = dim // cfg.num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias: nn.Parameter | None = None
        self.v_bias: nn.Parameter | None = None
        if cfg.qkv_bias:
            self.enable_qv_bias()
        if cfg.qk_norm:
            self.q_norm = nn.LayerNorm(self.head_dim, eps=cfg.norm_eps)
            self.k_norm = nn.LayerNorm(self.head_dim, eps=cfg.norm_eps)
        else:
            self.q_norm = self.k_norm = None
        self.attn_dropout = cfg.attn_dropout
        self.proj = nn.Linear(dim, dim)

    def enable_qv_bias(self) -> None:
        """Add zero-initialized learned q and v biases (k has none)."""
        if self.q_bias is None:
            dim = self.qkv.in_features
            device, dtype = self.qkv.weight.device, self.qkv.weight.dtype
            self.q_bias = nn.Parameter(torch.zeros(dim, device=device, dtype=dtype))
            self.v_bias = nn.Parameter(torch.zeros(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h, hd = self.num_heads, self.head_dim
        # q, k and v as three products with slices of the fused qkv weight: each comes out
        # contiguous as (B, N, H, hd), so the per-head q/k LayerNorms run in place of the
        # layout and neither they nor their backward pass copy (slicing one (B, N, 3D)
        # output cost ~5 % of an attention layer in copies and zero-fills on CPU).
        w_q, w_k, w_v = self.qkv.weight.split(d)
        b_q = b_v = None
        if self.q_bias is not None:
            b_q, b_v = self.q_bias, self.v_bias
        q = F.linear(x, w_q, b_q).view(b, n, h, hd)
        k = F.linear(x, w_k).view(b, n, h, hd)
        v = F.linear(x, w_v, b_v).view(b, n, h, hd)
        if self.q_norm is not None:  # (under autocast the norms give float32: match v)
            q, k = self.q_norm(q).to(v.dtype), self.k_norm(k).to(v.dtype)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_dropout if self.training else 0.0
        )  # (B, H, N, hd); SDPA takes the strided (B, N, H, hd) layout as it is
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def init_linear_and_norm(root: nn.Module) -> None:
    """Truncated-normal (std 0.02) Linear weights, zero biases, unit LayerNorms, in place."""
    for module in root.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp_in_chunks(self.fc1, self.fc2, x)


class Block(nn.Module):
    """Pre-norm transformer block with layer scale, dropout and stochastic depth."""

    def __init__(self, cfg: LaBraMConfig, drop_path: float):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        if cfg.layer_scale_init > 0:
            self.gamma_1 = nn.Parameter(torch.full((dim,), float(cfg.layer_scale_init)))
            self.gamma_2 = nn.Parameter(torch.full((dim,), float(cfg.layer_scale_init)))
        else:
            self.gamma_1 = self.gamma_2 = None
        self.dropout = cfg.dropout
        self.drop_path = drop_path

    def _residual(self, x: torch.Tensor, branch, gamma) -> torch.Tensor:
        """``x + drop_path(gamma * dropout(branch(x)))`` as one multiply-add: the dropout
        mask, the layer scale and the per-sample drop-path factor are folded into one
        multiplier.

        On CPU the branch is computed only for the samples that stochastic depth keeps
        (a dropped sample's branch output is multiplied by 0, so computing it, and its
        zero gradient, is wasted work): same function, ~drop-path-rate less compute.
        """
        scale = gamma
        kept = None  # indices of the samples whose branch is computed; None: all
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            b = x.shape[0]
            factor = torch.empty((b, 1, 1), device=x.device).bernoulli_(keep).div_(keep)
            if x.device.type == "cpu":  # (elsewhere the count would cost a device sync)
                n_kept = int(factor.count_nonzero())
                # (all dropped: computed in full, so that every parameter still gets its
                # zero gradient, as without the skip, and the optimizer sees the same)
                if 0 < n_kept < b:
                    kept = factor.view(b).nonzero().squeeze(1)
                    factor = factor[:1].new_full((1, 1, 1), 1.0 / keep)
            scale = factor if scale is None else factor * scale
        y = branch(x if kept is None else x.index_select(0, kept))
        coef = 1.0  # inverted dropout's 1 / (1 - p), applied with the small factors
        if self.training and self.dropout > 0:
            coef = 1.0 / (1.0 - self.dropout)
            mask = keep_mask(y, self.dropout)
            scale = mask if scale is None else mask * (scale * coef)
            coef = coef if scale is mask else 1.0
        if kept is not None:
            update = y * scale if scale is not None else y
            return x.index_add(0, kept, update, alpha=coef)
        if scale is None:
            return x + y
        return torch.addcmul(x, y, scale, value=coef)

    def _attention_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.norm1(x))

    def _mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._residual(x, self._attention_branch, self.gamma_1)
        return self._residual(x, self._mlp_branch, self.gamma_2)


class LaBraMEncoder(nn.Module):
    """LaBraM spatiotemporal encoder.

    Parameters
    ----------
    config : LaBraMConfig | None
        Sizes and regularization; LaBraM-base when None.

    Notes
    -----
    Input ``x`` is shaped (batch, n_channels, n_patches, patch_size), EEG in µV/100 at
    200 Hz; ``ch_names`` names the channels (any subset of :data:`LABRAM_CHANNELS`, any
    order). :meth:`forward_features` returns the pooled features (batch, embed_dim).
    """

    def __init__(self, config: LaBraMConfig | None = None):
        super().__init__()
        cfg = config if config is not None else LaBraMConfig()
        self.config = cfg
        dim = cfg.embed_dim
        self.patch_embed = TemporalConv(cfg.conv_channels)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, len(LABRAM_CHANNELS) + 1, dim))
        self.time_embed = nn.Parameter(torch.zeros(1, cfg.n_time_slots, dim))
        rates = [cfg.drop_path * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList([Block(cfg, rate) for rate in rates])
        self.fc_norm = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self._indices = _IndexCache()
        self._encode_impl = self._encode
        self.reset_parameters()

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks."""
        return len(self.blocks)

    def reset_parameters(self) -> None:
        """LaBraM's initialization: truncated normal (std 0.02) for linear layers and
        embeddings, zero biases, unit LayerNorms, output projections of block i divided by
        sqrt(2 i); convolutions keep PyTorch's default."""
        init_linear_and_norm(self)
        for param in (self.pos_embed, self.time_embed, self.cls_token):
            nn.init.trunc_normal_(param, std=0.02)
        with torch.no_grad():
            for i, block in enumerate(self.blocks, start=1):
                block.attn.proj.weight.div_(math.sqrt(2.0 * i))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * i))

    def enable_compile(self, **kwargs) -> None:
        """Compile the tensor part of the forward pass with ``torch.compile``."""
        self._encode_impl = torch.compile(self._encode, **kwargs)

    def _check_input(self, x: torch.Tensor, ch_names) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"LaBraM input must be (batch, n_channels, n_patches, {self.config.patch_size}), "
                f"got shape {tuple(x.shape)}"
            )
        _, c, p, t = x.shape
        if t != self.config.patch_size:
            raise ValueError(
                f"LaBraM patches must have {self.config.patch_size} samples, got {t} "
                f"(input shape {tuple(x.shape)})"
            )
        if p > self.config.n_time_slots:
            raise ValueError(
                f"LaBraM takes at most {self.config.n_time_slots} patches per channel, got {p}"
            )
        if len(ch_names) != c:
            raise ValueError(f"x has {c} channels but ch_names names {len(ch_names)}")

    def _encode(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        b, c, p, _ = x.shape
        tokens = self.patch_embed(x)  # (B, C*P, D)
        pos = self.pos_embed[0, idx + 1]  # (C, D)
        emb = (pos[:, None, :] + self.time_embed[0, :p][None, :, :]).reshape(c * p, -1)
        cls = (self.cls_token[0] + self.pos_embed[0, :1]).expand(b, 1, -1)
        h = torch.cat((cls, tokens + emb), dim=1)
        if self.training and self.config.dropout > 0:
            h = h * dropout_mask(h, self.config.dropout)
        for block in self.blocks:
            h = block(h)
        return self.fc_norm(h[:, 1:].mean(dim=1))

    def forward_features(self, x: torch.Tensor, ch_names) -> torch.Tensor:
        """Pooled features (batch, embed_dim) of windows ``x`` with channels ``ch_names``."""
        self._check_input(x, ch_names)
        return self._encode_impl(x, self._indices(ch_names, x.device))

    def forward(self, x: torch.Tensor, ch_names) -> torch.Tensor:
        return self.forward_features(x, ch_names)

    def layer_id_for(self, name: str) -> int:
        """Layer index of a parameter for layer-wise lr decay (as LaBraM's fine-tuning).

        0 for ``cls_token``, ``pos_embed`` and ``patch_embed.*``; ``i + 1`` for
        ``blocks.i.*``; ``num_layers + 1`` for everything else (``time_embed`` and
        ``fc_norm`` included, as in the public fine-tuning code).
        """
        if name in ("cls_token", "pos_embed") or name.startswith("patch_embed."):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.num_layers + 1

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay: embeddings, norms, biases, scales."""
        names = {"cls_token", "pos_embed", "time_embed"}
        names.update(n for n, p in self.named_parameters() if p.ndim <= 1)
        return names


@dataclass
class CheckpointReport:
    """What :func:`load_labram_checkpoint` did.

    Attributes
    ----------
    path : str
        The checkpoint file.
    matched : list of str
        Keys loaded into the model (LaBraM names, without ``student.``).
    missing : list of str
        Model parameters the checkpoint lacks (they keep their initialization).
    unexpected : list of str
        Checkpoint keys the model has no place for (ignored), e.g. the pretraining
        ``mask_token``, ``norm`` and ``lm_head``.
    """

    path: str
    matched: list[str]
    missing: list[str]
    unexpected: list[str]

    def __str__(self) -> str:
        return (
            f"{self.path}: {len(self.matched)} matched, {len(self.missing)} missing "
            f"{self.missing}, {len(self.unexpected)} unexpected {self.unexpected}"
        )


def _extract_state_dict(obj, path: Path) -> tuple[dict, list[str]]:
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise ValueError(
            f"{path}: not a LaBraM checkpoint; expected a dict of tensors, or a dict whose "
            f"'model' entry is one (the public labram-base.pth format)"
        )
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    prefix = "student."
    if any(k.startswith(prefix) for k in tensors):
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        ignored = sorted(k for k in tensors if not k.startswith(prefix))
        return state, ignored
    return tensors, []


def load_labram_checkpoint(model: nn.Module, path) -> CheckpointReport:
    """Load pretrained LaBraM weights (the public ``labram-base.pth`` format) into a model.

    Parameters
    ----------
    model : LaBraMEncoder | nn.Module
        A :class:`LaBraMEncoder`, or a model holding one as its ``labram`` attribute
        (the NeuroBOLT model and its ``labram`` ablation).
    path : str | Path
        Checkpoint: ``{"model": {"student.<key>": tensor, ...}}`` as published, or the
        same without the ``student.`` prefix, or a plain state dict. Read with
        ``torch.load(weights_only=True)``.

    Returns
    -------
    report : CheckpointReport
        Matched, missing and unexpected keys.

    Raises
    ------
    ValueError
        If the file is not a state dict, no key matches, or a matching key has a
        different shape (nothing is loaded then).
    """
    path = Path(path)
    encoder = model if isinstance(model, LaBraMEncoder) else getattr(model, "labram", None)
    if not isinstance(encoder, LaBraMEncoder):
        raise TypeError(
            f"load_labram_checkpoint needs a LaBraMEncoder or a model with a LaBraM branch "
            f"(attribute 'labram'); got {type(model).__name__}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"LaBraM checkpoint {path} does not exist")
    with torch.serialization.safe_globals([argparse.Namespace]):
        obj = torch.load(path, map_location="cpu", weights_only=True)
    state, ignored = _extract_state_dict(obj, path)

    # A checkpoint trained with q/v biases brings them along.
    for i, block in enumerate(encoder.blocks):
        if f"blocks.{i}.attn.q_bias" in state:
            block.attn.enable_qv_bias()

    own = encoder.state_dict()
    matched = sorted(k for k in state if k in own)
    if not matched:
        raise ValueError(
            f"{path}: no key matches the LaBraM encoder (first checkpoint keys: "
            f"{sorted(state)[:5]}); is this a LaBraM checkpoint?"
        )
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in matched
        if state[k].shape != own[k].shape
    ]
    if mismatched:
        raise ValueError(
            f"{path}: shape mismatch for {len(mismatched)} key(s): {'; '.join(mismatched)}. "
            "Build the model with the checkpoint's sizes (LaBraM-base: preset 'paper')."
        )
    with torch.no_grad():
        for k in matched:
            own[k].copy_(state[k].to(own[k].dtype))
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own) + ignored
    return CheckpointReport(str(path), matched, missing, unexpected)
