"""Contract tests of the NeuroBOLT models (CPU, tiny preset where possible)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neurobolt.models import build_model, load_labram_checkpoint
from neurobolt.models import labram as labram_module
from neurobolt.models.labram import LABRAM_CHANNELS, LaBraMConfig, LaBraMEncoder, channel_indices
from neurobolt.models.spectral import multiscale_spectra

CH26 = (
    "FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 FPZ FZ CZ PZ POZ OZ FT9 FT10 TP9 TP10"
).split()
# 19 of them in another order, mixed case as MNE spells them
CH19 = "Oz Cz Fp2 T8 P3 TP10 F7 Pz O1 FT9 C4 F4 P8 Fz T7 POz Fp1 P7 F3".split()


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _x(batch, n_channels, n_patches, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n_channels, n_patches, 200, generator=gen)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("names", [CH26, CH19], ids=["26ch", "19ch-reordered"])
def test_output_shapes_tiny(names):
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_outputs=3, n_patches=4).eval()
    x = _x(2, len(names), 4)
    with torch.no_grad():
        assert model(x, names).shape == (2, 3)
        assert model.forward_features(x, names).shape == (2, 100)


def test_output_shapes_paper():
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="paper").eval()
    x = _x(1, 19, 16)
    with torch.no_grad():
        assert model.forward_features(x, CH19).shape == (1, 200)
        assert model(x, CH19).shape == (1, 1)
    n = {k: sum(p.numel() for p in getattr(model, k).parameters()) for k in ("labram", "head")}
    assert n == {"labram": 5_819_936, "head": 201}  # LaBraM-base and a 1-ROI head


@pytest.mark.parametrize("name", ["labram", "spectral"])
def test_ablations_have_one_branch(name):
    model = build_model(name, preset="tiny", n_patches=4).eval()
    assert (model.labram is None) == (name == "spectral")
    assert (model.spectral is None) == (name == "labram")
    with torch.no_grad():
        assert model(_x(2, 19, 4), CH19).shape == (2, 1)


def test_bad_inputs_refused():
    model = build_model("neurobolt", preset="tiny", n_patches=4).eval()
    with pytest.raises(ValueError, match="Unknown EEG channel name.*XYZ.*Known names: FP1, FPZ"):
        model(_x(1, 3, 4), ["FP1", "XYZ", "CZ"])
    with pytest.raises(ValueError, match="ch_names names 2"):
        model(_x(1, 3, 4), ["FP1", "CZ"])
    with pytest.raises(ValueError, match="more than once"):
        model(_x(1, 2, 4), ["FP1", "fp1"])
    with pytest.raises(ValueError, match="800 samples per channel"):
        model(_x(1, 2, 5), ["FP1", "CZ"])
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        build_model("nope")
    with pytest.raises(TypeError, match="Unknown model option"):
        build_model("neurobolt", preset="tiny", depth=3)


def test_channel_table():
    assert len(LABRAM_CHANNELS) == 128  # pos_embed has 129 slots, slot 0 = cls
    assert channel_indices(["Fp1", "fpz", "FP2", "ftt9H", "P8-O2"]) == [0, 1, 2, 114, 127]
    assert channel_indices(["CZ", "O1"]) == [LABRAM_CHANNELS.index("CZ"), 80]


# --------------------------------------------------------------------------- training


def test_tiny_overfits_one_batch():
    """A shared model (one encoder, one output per ROI) fits one batch for every ROI at once,
    with the masked loss of training and some targets missing (NaN) in two of the ROIs."""
    from neurobolt.heads import masked_mse

    torch.manual_seed(0)
    n_rois = 4
    model = build_model(
        "neurobolt",
        preset="tiny",
        n_outputs=n_rois,
        n_patches=4,
        dropout=0.0,
        drop_path=0.0,
        spectral_dropout=0.0,
        spectral_pos_dropout=0.0,
    ).train()
    x = _x(8, 19, 4, seed=1) * 0.5
    y = torch.randn(8, n_rois, generator=torch.Generator().manual_seed(2)) * 0.5
    y[[1, 5], 1] = float("nan")
    y[0, 3] = float("nan")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    losses = []
    for _ in range(300):
        loss = masked_mse(model(x, CH19), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if loss.item() < 1e-4:
            break
    assert losses[0] > 0.05
    assert min(losses) < 1e-3, losses[-5:]
    with torch.no_grad():
        pred = model.eval()(x, CH19)
    ok = torch.isfinite(y)
    for j in range(n_rois):  # every ROI, not just their mean
        err = (pred[ok[:, j], j] - y[ok[:, j], j]).abs().max().item()
        assert err < 0.1, (j, err)


def test_head_init_scale():
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_outputs=4, n_patches=4)
    w = model.head.weight
    # trunc_normal(std 0.02) x 0.001 -> std 2e-5
    assert 1e-5 < w.std().item() < 4e-5
    assert torch.equal(model.head.bias, torch.zeros(4))
    with torch.no_grad():
        assert model.eval()(_x(2, 19, 4), CH19).abs().max() < 1e-2


def test_drop_path_and_layer_decay_helpers():
    model = build_model("neurobolt", preset="paper")
    blocks = model.labram.blocks
    assert blocks[0].drop_path == 0.0 and blocks[-1].drop_path == 0.1
    assert math.isclose(blocks[6].drop_path, 0.6 / 11)
    assert model.num_layers == 12
    ids = {
        "labram.cls_token": 0,
        "labram.pos_embed": 0,
        "labram.patch_embed.conv1.weight": 0,
        "labram.blocks.0.attn.qkv.weight": 1,
        "labram.blocks.11.mlp.fc2.bias": 12,
        "labram.time_embed": 13,
        "labram.fc_norm.weight": 13,
        "spectral.blocks.0.attn.qkv.weight": 13,
        "head.weight": 13,
    }
    assert {name: model.layer_id_for(name) for name in ids} == ids
    assert all(0 <= model.layer_id_for(n) <= 13 for n, _ in model.named_parameters())
    no_wd = model.no_weight_decay()
    for name in ("labram.pos_embed", "labram.blocks.3.gamma_1", "spectral.channel_embed.weight"):
        assert name in no_wd
    for name in ("head.bias", "labram.blocks.0.attn.q_norm.weight", "spectral.blocks.0.norm1.bias"):
        assert name in no_wd
    assert "labram.blocks.0.attn.qkv.weight" not in no_wd and "head.weight" not in no_wd
    assert not set(no_wd) - {n for n, _ in model.named_parameters()}


def test_chunked_mlp_and_pooled_last_block_are_exact(monkeypatch):
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_patches=4).eval()
    x = _x(3, 19, 4)
    enc = model.spectral
    with torch.no_grad():
        whole = model(x, CH19)
        # plain spectral encoder: every block in full, then the mean over tokens
        h = enc.embed(x.reshape(3, 19, -1), enc._indices(CH19, x.device))
        for block in enc.blocks:
            h = block(h)
        torch.testing.assert_close(enc(x, CH19), h.mean(dim=1), rtol=1e-5, atol=1e-6)
        # MLPs in chunks of 50 tokens (3 x 77 LaBraM tokens, 3 x 152 spectral tokens)
        monkeypatch.setattr(labram_module, "CPU_MLP_CHUNK_BYTES", 0)
        monkeypatch.setattr(labram_module, "CPU_MLP_CHUNK_ROWS", 50)
        torch.testing.assert_close(model(x, CH19), whole, rtol=1e-5, atol=1e-7)


def _assert_all_close(got, want, rel=1e-5, floor=1e-6):
    """Each pair equal to ``rel`` of the reference tensor's largest magnitude (gradients are
    sums over many rows; elementwise relative error is meaningless near zero)."""
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        err = (a - b).abs().max().item()
        tol = rel * b.abs().max().item() + floor
        assert err <= tol, f"tensor {i} {tuple(b.shape)}: max error {err:.3g} > {tol:.3g}"


def test_chunked_mlp_function_equals_plain_mlp(monkeypatch):
    torch.manual_seed(0)
    mlp = labram_module.Mlp(40, 160)
    with torch.no_grad():
        mlp.fc1.bias.normal_()
        mlp.fc2.bias.normal_()
    x = torch.randn(3, 70, 40, requires_grad=True)
    want = _grads_module(mlp, x, lambda h: mlp.fc2(F.gelu(mlp.fc1(h))))
    # 210 rows in uneven chunks of at most 64 rows through _ChunkedMlp
    monkeypatch.setattr(labram_module, "CPU_MLP_CHUNK_BYTES", 0)
    monkeypatch.setattr(labram_module, "CPU_MLP_CHUNK_ROWS", 64)
    _assert_all_close(_grads_module(mlp, x, mlp), want)


def _grads_module(module, x, fn):
    """Output and gradients (input, then ``module``'s parameters) of a random projection
    of ``fn(x)``."""
    out = fn(x)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad((out * weight).sum(), [x, *module.parameters()])
    return [out, *grads]


def test_linear_attention_equals_head_by_head_equations():
    from neurobolt.models.spectral import LinearAttention

    torch.manual_seed(0)
    attn = LinearAttention(40, 8, dropout=0.0)
    with torch.no_grad():
        attn.proj.bias.normal_()
    x = torch.randn(3, 50, 40, requires_grad=True)

    def straight(h):  # the equations, one head at a time
        b, n, d = h.shape
        heads = []
        q, k, v = F.linear(h, attn.qkv.weight).chunk(3, dim=-1)
        for i in range(8):
            cols = slice(5 * i, 5 * i + 5)
            qh = q[..., cols].softmax(dim=-1) * 5**-0.5  # over features
            kh = k[..., cols].softmax(dim=1)  # over tokens
            heads.append(qh @ (kh.transpose(1, 2) @ v[..., cols]))
        return attn.proj(torch.cat(heads, dim=-1))

    want = _grads_module(attn, x, straight)
    _assert_all_close(_grads_module(attn, x, attn), want)
    _assert_all_close(_grads_module(attn, x, attn.forward_reference), want)


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_labram_attention_equals_straight_equations(qkv_bias):
    torch.manual_seed(0)
    cfg = LaBraMConfig(embed_dim=40, num_heads=4, conv_channels=4, patch_size=80)
    attn = labram_module.Attention(cfg)
    if qkv_bias:
        attn.enable_qv_bias()
    with torch.no_grad():
        for p in attn.parameters():
            if p.ndim == 1:
                p.normal_()
    x = torch.randn(3, 30, 40, requires_grad=True)

    def straight(h):
        b, n, d = h.shape
        bias = None
        if qkv_bias:
            bias = torch.cat((attn.q_bias, torch.zeros_like(attn.q_bias), attn.v_bias))
        qkv = F.linear(h, attn.qkv.weight, bias).view(b, n, 3, 4, 10).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = F.layer_norm(q, (10,), attn.q_norm.weight, attn.q_norm.bias, eps=1e-6)
        k = F.layer_norm(k, (10,), attn.k_norm.weight, attn.k_norm.bias, eps=1e-6)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(10)).softmax(dim=-1)
        return attn.proj((weights @ v).transpose(1, 2).reshape(b, n, d))

    # (k_norm.bias has an exact gradient of 0, softmax being blind to a shift shared by all
    # keys: both sides give rounding noise there, hence the absolute floor)
    got, want = _grads_module(attn, x, attn), _grads_module(attn, x, straight)
    _assert_all_close(got, want, floor=1e-5)


def test_drop_path_skips_dropped_samples_exactly():
    """A block computes its branches only for the samples stochastic depth keeps: output and
    gradients equal multiplying every sample's branch output by its drop-path factor."""
    torch.manual_seed(0)
    cfg = LaBraMConfig(embed_dim=40, num_heads=4, conv_channels=4, patch_size=80)
    block = labram_module.Block(cfg, drop_path=0.5).train()
    x = torch.randn(8, 12, 40, requires_grad=True)

    def straight(h):  # the same random draws, in the same order, applied to all samples
        keep = 0.5
        f1 = torch.empty((8, 1, 1)).bernoulli_(keep).div_(keep)
        h = h + f1 * block.gamma_1 * block.attn(block.norm1(h))
        f2 = torch.empty((8, 1, 1)).bernoulli_(keep).div_(keep)
        straight.factors = (f1, f2)
        return h + f2 * block.gamma_2 * block.mlp(block.norm2(h))

    torch.manual_seed(3)
    want = _grads_module(block, x, straight)
    dropped = [int((f == 0).sum()) for f in straight.factors]
    assert all(0 < n < 8 for n in dropped), dropped  # this seed drops some, keeps some
    torch.manual_seed(3)
    _assert_all_close(_grads_module(block, x, block), want)


def test_block_dropout_folds_into_the_residual_exactly():
    """Dropout on the branch outputs (keep mask, 1 / (1 - p) folded into the layer scale)
    equals the written-out inverted dropout with the same random draws."""
    torch.manual_seed(0)
    cfg = LaBraMConfig(embed_dim=40, num_heads=4, conv_channels=4, patch_size=80, dropout=0.3)
    block = labram_module.Block(cfg, drop_path=0.0).train()
    x = torch.randn(4, 12, 40, requires_grad=True)

    def straight(h):
        y = block.attn(block.norm1(h))
        mask = (torch.empty_like(y).uniform_() >= 0.3).float() / 0.7
        h = h + block.gamma_1 * (y * mask)
        y = block.mlp(block.norm2(h))
        mask = (torch.empty_like(y).uniform_() >= 0.3).float() / 0.7
        return h + block.gamma_2 * (y * mask)

    torch.manual_seed(5)
    want = _grads_module(block, x, straight)
    torch.manual_seed(5)
    _assert_all_close(_grads_module(block, x, block), want)


def test_dropout_mask_statistics():
    torch.manual_seed(0)
    mask = labram_module.dropout_mask(torch.empty(400, 500), 0.2)
    assert set(mask.unique().tolist()) == {0.0, 1.25}
    assert abs((mask == 0).float().mean().item() - 0.2) < 0.005


def test_train_mode_is_stochastic_eval_is_not():
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_patches=4)
    x = _x(2, 19, 4)
    with torch.no_grad():
        a, b = model.train().forward_features(x, CH19), model.forward_features(x, CH19)
        assert not torch.allclose(a, b)
        a, b = model.eval().forward_features(x, CH19), model.forward_features(x, CH19)
        assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # torch.compile's
def test_bf16_autocast_and_compile_flags():
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="tiny", n_patches=4).eval()
    x = _x(2, 19, 4)
    with torch.no_grad():
        ref = model.forward_features(x, CH19)
        model.config.autocast_bf16 = True
        out = model.forward_features(x, CH19)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
    model.train()(x, CH19).square().mean().backward()  # dropout/drop path under autocast
    assert model.labram.blocks[0].attn.qkv.weight.grad is not None
    compiled = build_model("neurobolt", preset="tiny", n_patches=4, compile=True)
    assert compiled.labram._encode_impl is not compiled.labram._encode


# --------------------------------------------------------------------------- spectral branch


@pytest.mark.parametrize(
    ("n_fft", "hop"), [((100, 200, 400), None), ((200,), (100,)), ((200, 400), (50, 400))]
)
def test_multiscale_spectra_equal_stft(n_fft, hop):
    x = _x(2, 3, 4).reshape(2, 3, 800)
    spectra = multiscale_spectra(x, n_fft, hop)
    for n, h, spec in zip(n_fft, hop or n_fft, spectra, strict=True):
        stft = torch.stft(
            x.reshape(6, 800),
            n_fft=n,
            hop_length=h,
            window=torch.ones(n),
            center=False,
            onesided=True,
            return_complex=True,
        ).abs()
        n_win = (800 - n) // h + 1
        assert spec.shape == (2, 3, n_win, n // 2 + 1)
        torch.testing.assert_close(spec.reshape(6, n_win, -1), stft.transpose(1, 2))


def test_multiscale_spectra_magnitude_bit_identical_to_abs():
    """The magnitudes (hypot of the real and imaginary parts, for speed) are exactly the
    complex ``abs`` of the FFT, on broadband noise with a large DC offset and a tiny
    channel (magnitudes over many orders: where an approximate sqrt would round apart)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 800, generator=gen) + torch.tensor([50.0, 0.0, 0.0])[:, None]
    x[:, 2] *= 1e-6
    for n, spec in zip((100, 400), multiscale_spectra(x, (100, 400)), strict=True):
        frames = x.reshape(2, 3, 800 // n, n)
        assert torch.equal(spec, torch.fft.rfft(frames, dim=-1).abs())


def test_biot_is_the_spectral_encoder_with_one_overlapping_scale():
    model = build_model("biot", preset="paper").eval()
    cfg = model.spectral.config
    assert model.labram is None and cfg.n_fft == (200,) and cfg.hop == (100,)
    assert cfg.scale_windows == (31,) and cfg.n_windows == 31  # (3200 - 200) / 100 + 1
    assert model.spectral.freq_proj[0].in_features == 101
    with torch.no_grad():
        assert model(_x(2, 19, 16), CH19).shape == (2, 1)
    with pytest.raises(ValueError, match="fixes its STFT"):
        build_model("biot", preset="tiny", spectral={"n_fft": (100,)})
    with pytest.raises(ValueError, match="one positive hop per n_fft"):
        build_model("spectral", preset="tiny", spectral={"hop": (100,)})


def test_spectral_branch_is_batched_over_channels(monkeypatch):
    torch.manual_seed(0)
    model = build_model("spectral", preset="tiny", n_patches=4).eval()
    enc = model.spectral
    x = _x(2, 19, 4)
    calls = []
    rfft = torch.fft.rfft
    monkeypatch.setattr(torch.fft, "rfft", lambda *a, **k: calls.append(1) or rfft(*a, **k))
    with torch.no_grad():
        out = enc.forward_features(x, CH19)
        assert len(calls) == 4  # one FFT per scale for all channels, not one per channel
        # Permuting the channels together with their names changes nothing ...
        perm = torch.randperm(19)
        permuted = enc.forward_features(x[:, perm], [CH19[i] for i in perm])
        torch.testing.assert_close(permuted, out, rtol=1e-5, atol=1e-5)
        # ... and the embedding of a channel that is not in the input is never used.
        enc.channel_embed.weight[LABRAM_CHANNELS.index("CP1")] += 100.0
        assert torch.equal(enc.forward_features(x, CH19), out)
        enc.channel_embed.weight[LABRAM_CHANNELS.index("CZ")] += 1.0
        assert not torch.allclose(enc.forward_features(x, CH19), out)


# --------------------------------------------------------------------------- LaBraM checkpoint


def _public_format(encoder: LaBraMEncoder, prefix: str = "student.") -> dict:
    """State dict as the public labram-base.pth (pretraining extras included)."""
    state = {prefix + k: v.clone() for k, v in encoder.state_dict().items()}
    dim = encoder.config.embed_dim
    state[prefix + "mask_token"] = torch.zeros(1, 1, dim)
    state[prefix + "norm.weight"] = torch.ones(dim)
    state[prefix + "lm_head.weight"] = torch.zeros(16, dim)
    return {"model": state} if prefix else state


@pytest.mark.parametrize("prefix", ["student.", ""])
def test_checkpoint_round_trip(tmp_path, prefix):
    torch.manual_seed(0)
    source = build_model("labram", preset="tiny", n_patches=4).eval()
    path = tmp_path / "labram-base.pth"
    torch.save(_public_format(source.labram, prefix), path)
    torch.manual_seed(1)
    target = build_model("neurobolt", preset="tiny", n_patches=4).eval()
    x = _x(2, 19, 4)
    with torch.no_grad():
        assert not torch.allclose(target.labram(x, CH19), source.labram(x, CH19))
        report = load_labram_checkpoint(target, path)
        torch.testing.assert_close(target.labram(x, CH19), source.labram(x, CH19))
    assert report.matched == sorted(source.labram.state_dict())
    assert report.missing == []
    assert report.unexpected == ["lm_head.weight", "mask_token", "norm.weight"]


def test_checkpoint_refusals_and_qv_bias(tmp_path):
    torch.manual_seed(0)
    wide = LaBraMEncoder(LaBraMConfig(depth=2))  # LaBraM-base width, 2 blocks
    path = tmp_path / "wide.pth"
    torch.save(_public_format(wide), path)
    tiny = build_model("labram", preset="tiny", n_patches=4)
    with pytest.raises(
        ValueError, match=r"wide.pth: shape mismatch.*pos_embed: checkpoint \(1, 129, 200\)"
    ):
        load_labram_checkpoint(tiny, path)
    torch.save({"model": {"student.foo": torch.zeros(3)}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no key matches"):
        load_labram_checkpoint(tiny, tmp_path / "other.pth")
    # q/v biases in the checkpoint are created and loaded
    state = _public_format(wide)
    state["model"]["student.blocks.1.attn.q_bias"] = torch.full((200,), 0.5)
    state["model"]["student.blocks.1.attn.v_bias"] = torch.full((200,), -0.5)
    torch.save(state, path)
    target = LaBraMEncoder(LaBraMConfig(depth=2))
    report = load_labram_checkpoint(target, path)
    assert "blocks.1.attn.q_bias" in report.matched and target.blocks[0].attn.q_bias is None
    assert torch.equal(target.blocks[1].attn.v_bias, torch.full((200,), -0.5))


# --------------------------------------------------------------------------- parity


def _straight_labram(sd: dict, x: torch.Tensor, slots: list[int], heads: int) -> torch.Tensor:
    """LaBraM's equations written out directly from a public-format state dict."""
    b, c, p, t = x.shape
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))

    def group_norm(h, w, bias, groups=4, eps=1e-5):
        g = h.reshape(b, groups, -1)
        mean = g.mean(-1, keepdim=True)
        var = ((g - mean) ** 2).mean(-1, keepdim=True)
        g = ((g - mean) / torch.sqrt(var + eps)).reshape(h.shape)
        return g * w[None, :, None, None] + bias[None, :, None, None]

    def layer_norm(h, w, bias, eps=1e-6):
        mean = h.mean(-1, keepdim=True)
        var = ((h - mean) ** 2).mean(-1, keepdim=True)
        return (h - mean) / torch.sqrt(var + eps) * w + bias

    def gelu(h):
        return 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))

    h = x.reshape(b, 1, c * p, t)
    for i, (stride, pad) in enumerate([(8, 7), (1, 1), (1, 1)], start=1):
        pre = f"patch_embed.conv{i}."
        h = F.conv2d(h, sd[pre + "weight"], sd[pre + "bias"], stride=(1, stride), padding=(0, pad))
        h = gelu(group_norm(h, sd[f"patch_embed.norm{i}.weight"], sd[f"patch_embed.norm{i}.bias"]))
    k_ch, n_pos = h.shape[1], h.shape[3]
    tokens = torch.stack([h[:, k] for k in range(k_ch)], dim=-1)  # (B, C*P, T', K)
    tokens = tokens.reshape(b, c * p, n_pos * k_ch)
    pos = sd["pos_embed"][0]
    for ci, slot in enumerate(slots):
        for pi in range(p):
            tokens[:, ci * p + pi] += pos[slot] + sd["time_embed"][0, pi]
    z = torch.cat([(sd["cls_token"][0, 0] + pos[0]).expand(b, 1, -1), tokens], dim=1)
    for i in range(depth):
        pre = f"blocks.{i}."
        a = layer_norm(z, sd[pre + "norm1.weight"], sd[pre + "norm1.bias"])
        qkv = a @ sd[pre + "attn.qkv.weight"].T
        if pre + "attn.q_bias" in sd:
            qb, vb = sd[pre + "attn.q_bias"], sd[pre + "attn.v_bias"]
            qkv = qkv + torch.cat([qb, torch.zeros_like(qb), vb])
        q, k, v = qkv.chunk(3, dim=-1)
        d = q.shape[-1] // heads
        outs = []
        for hd in range(heads):
            sl = slice(hd * d, (hd + 1) * d)
            qh = layer_norm(
                q[..., sl], sd[pre + "attn.q_norm.weight"], sd[pre + "attn.q_norm.bias"]
            )
            kh = layer_norm(
                k[..., sl], sd[pre + "attn.k_norm.weight"], sd[pre + "attn.k_norm.bias"]
            )
            att = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)
            outs.append(att @ v[..., sl])
        o = torch.cat(outs, dim=-1) @ sd[pre + "attn.proj.weight"].T + sd[pre + "attn.proj.bias"]
        z = z + sd[pre + "gamma_1"] * o
        m = layer_norm(z, sd[pre + "norm2.weight"], sd[pre + "norm2.bias"])
        m = gelu(m @ sd[pre + "mlp.fc1.weight"].T + sd[pre + "mlp.fc1.bias"])
        m = m @ sd[pre + "mlp.fc2.weight"].T + sd[pre + "mlp.fc2.bias"]
        z = z + sd[pre + "gamma_2"] * m
    return layer_norm(z[:, 1:].mean(dim=1), sd["fc_norm.weight"], sd["fc_norm.bias"])


def _random_public_state(depth: int, dim: int = 200, conv: int = 8, seed: int = 0) -> dict:
    """A LaBraM-base-shaped state dict with the public key names, random values."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.1, offset=0.0):
        return torch.randn(*shape, generator=gen) * scale + offset

    hd = dim // 10
    sd = {
        "cls_token": rnd(1, 1, dim),
        "pos_embed": rnd(1, 129, dim),
        "time_embed": rnd(1, 16, dim),
        "fc_norm.weight": rnd(dim, offset=1.0),
        "fc_norm.bias": rnd(dim),
        "patch_embed.conv1.weight": rnd(conv, 1, 1, 15, scale=0.3),
        "patch_embed.conv1.bias": rnd(conv),
    }
    for i in (2, 3):
        sd[f"patch_embed.conv{i}.weight"] = rnd(conv, conv, 1, 3, scale=0.3)
        sd[f"patch_embed.conv{i}.bias"] = rnd(conv)
    for i in (1, 2, 3):
        sd[f"patch_embed.norm{i}.weight"] = rnd(conv, offset=1.0)
        sd[f"patch_embed.norm{i}.bias"] = rnd(conv)
    for i in range(depth):
        pre = f"blocks.{i}."
        for name, shape in [
            ("norm1", (dim,)),
            ("norm2", (dim,)),
            ("attn.q_norm", (hd,)),
            ("attn.k_norm", (hd,)),
        ]:
            sd[pre + name + ".weight"] = rnd(*shape, offset=1.0)
            sd[pre + name + ".bias"] = rnd(*shape)
        sd[pre + "attn.qkv.weight"] = rnd(3 * dim, dim)
        sd[pre + "attn.q_bias"] = rnd(dim)
        sd[pre + "attn.v_bias"] = rnd(dim)
        sd[pre + "attn.proj.weight"] = rnd(dim, dim)
        sd[pre + "attn.proj.bias"] = rnd(dim)
        sd[pre + "mlp.fc1.weight"] = rnd(4 * dim, dim)
        sd[pre + "mlp.fc1.bias"] = rnd(4 * dim)
        sd[pre + "mlp.fc2.weight"] = rnd(dim, 4 * dim)
        sd[pre + "mlp.fc2.bias"] = rnd(dim)
        sd[pre + "gamma_1"] = rnd(dim, offset=0.5)
        sd[pre + "gamma_2"] = rnd(dim, offset=0.5)
    return sd


def test_labram_parity_with_straight_equations(tmp_path):
    sd = _random_public_state(depth=2)
    path = tmp_path / "ref.pth"
    torch.save({"model": {"student." + k: v for k, v in sd.items()}}, path)
    torch.manual_seed(0)
    model = build_model("neurobolt", preset="paper", labram={"depth": 2}).eval()
    report = load_labram_checkpoint(model, path)
    assert report.missing == [] and report.unexpected == []
    x = _x(2, 19, 5, seed=3)
    slots = [LABRAM_CHANNELS.index(name.upper()) + 1 for name in CH19]
    with torch.no_grad():
        ours = model.labram.forward_features(x, CH19)
        expected = _straight_labram(sd, x, slots, heads=10)
    assert expected.abs().max() > 0.5  # not a degenerate comparison
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
