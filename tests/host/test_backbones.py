"""One attention capture for every backbone ComfyUI v0.3.64 runs (issue 23), on tiny models
built from ComfyUI's own classes (tiny_backbones.py, tiny_text.py).

Per family:
1. every attention call the model makes reaches the capture (kernel calls = calls seen);
2. the captured maps equal a brute-force softmax of the same q/k with the model's masks --
   computed here from this file's own token facts, written from the model code;
3. a planted map with a sharp boundary lands on the right latent cells, odd sizes too;
4. LoTTS Sampler runs end to end and keeps the region outside a noise_mask exactly;
5. reference, register and padding tokens never reach the maps (Kontext, Qwen-Image-Edit,
   OmniGen2, AuraFlow; T5 padding on Cosmos and AuraFlow), and the token facts themselves
   are checked against the real models (which rows of a call change when the latent, the
   text or the reference latent changes).
Plus the refusals: a family whose attention bypasses the hook, a model without a layout,
a model whose calls do not match its layout; and chaining another node's override.
"""

from __future__ import annotations

import pytest
import torch

from comfy_host import require_comfyui

require_comfyui()

import comfy.model_management  # noqa: E402
import comfy.patcher_extension  # noqa: E402
import comfy.sample  # noqa: E402
import nodes as comfy_nodes  # noqa: E402

import tiny_backbones as tb  # noqa: E402
import tiny_text  # noqa: E402
from unet_support import model_state, pack_module, run_node  # noqa: E402

FAMILIES = list(tb.FAMILIES)
EXCLUDING = ["flux_kontext", "qwen_image_edit", "omnigen2", "auraflow", "flux2_edit",
             "zimage"]  # (5): references, registers, Z-Image's pad tokens (the text padding
# FLUX.2 and Anima's models add: flux2 and anima_t5 in (2), keys weighted 0 by the brute force)
TXT = 7
CONTENT = {0: [0., 1, 1, 1, 1, 1, 0], 1: [0., 1, 0, 1, 0, 1, 0], 2: [0., 0, 1, 1, 0, 0, 0]}
SIZES = [(10, 14), (9, 13)]  # in 8x-VAE latent pixels: even, odd (odd where the model allows)
UNET_LEVEL = 4  # the tiny U-Nets' attention level the localizer reads (latent/4)


def capture_module():
    return pack_module("nodes.attention_capture")


def sizes(name):
    """The sizes a family is tested at: the odd one, or the even one where the model
    itself refuses odd sides (odd sizes exercise padding and partial cells)."""
    fam = tb.FAMILIES[name]
    return [SIZES[0] if fam.even_only else SIZES[1]]


def weights(fam) -> dict:
    """Content weights per conditioning and text segment (padding-like first/last token)."""
    text = "t5" if "t5" in fam.order else "txt"
    out = {}
    for c, w in CONTENT.items():
        out[c] = {text: torch.tensor(w)}
        if "llama" in fam.order:
            out[c]["llama"] = out[c]["llama_k"] = torch.ones(tb.HIDREAM_LLAMA_TOKENS)
    return out


# --- the facts this test holds (from reading the model code, not lotts/layouts.py) ---------

def ceil_div(a, b):
    return -(-a // b)


def facts(fam, latent_hw):
    """(token grid, {segment: (start, end)} of a joint call, kept-grid pooling factor)."""
    if fam.name in tb.UNETS:
        grid = (ceil_div(latent_hw[0], UNET_LEVEL), ceil_div(latent_hw[1], UNET_LEVEL))
        return grid, {}, 1
    grid = (ceil_div(latent_hw[0], fam.patch), ceil_div(latent_hw[1], fam.patch))
    img, m = grid[0] * grid[1], fam.pad_multiple
    lengths = {"img": img, "txt": fam.text_pad[1] if fam.text_pad else TXT, "t5": TXT,
               "reg": fam.registers, "txt_pad": (-TXT) % m if m else 0,
               "img_pad": (-img) % m if m else 0,
               "llama": tb.HIDREAM_LLAMA_TOKENS, "llama_k": tb.HIDREAM_LLAMA_TOKENS,
               "ref": sum(ceil_div(h, fam.patch) * ceil_div(w, fam.patch)
                          for h, w in (fam.size(*r) for r in fam.refs))}
    ranges, at = {}, 0
    for name in fam.order:
        ranges[name] = (at, at + lengths[name])
        at += lengths[name]
    return grid, ranges, max(1, 32 // (fam.patch * fam.latent_scale))


def placed(fam, ws, n):
    """Text weights as the call holds them: padded to ``n`` where the model pads its text."""
    if ws.shape[0] == n or not fam.text_pad:
        return ws
    pad = torch.zeros(n - ws.shape[0], dtype=ws.dtype)
    return torch.cat([pad, ws] if fam.text_pad[0] == "head" else [ws, pad])


def kind_of(fam, grid, ranges, nq, nk):
    img = grid[0] * grid[1]
    if ranges:
        total = max(b for _, b in ranges.values())
        return "joint" if nq == nk == total else "other"
    if nq == nk == img:
        return "self"
    return "cross" if nq == img and nk == text_length(fam) else "other"


def text_length(fam):
    """The text tokens of a call: the hand-made TXT, or what the model pads them to."""
    return fam.text_pad[1] if fam.text_pad else TXT


def read_calls(fam, model, kinds):
    """Indices (into ``kinds``, one forward's calls) of the calls the localizer reads."""
    if fam.name in tb.UNETS:
        return [i for i, k in enumerate(kinds) if k in ("self", "cross")]
    dm = model.get_model_object("diffusion_model")
    start = 0
    for name in fam.blocks:
        if name == fam.read:
            break
        start += len(getattr(dm, name))
    n = len(getattr(dm, fam.read))
    lo, hi = start + n // 2, start + n
    out, seen = [], {}
    for i, k in enumerate(kinds):
        j = seen.get(k, 0)
        seen[k] = j + 1
        if k in ("joint", "self", "cross") and lo <= j < hi:
            out.append(i)
    return out


# --- running a probe with a spy ---------------------------------------------------------------

def as_heads(x, heads, skip):
    return x if skip else x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def probe(name, latent_hw, conds=None, latent=None, spy_calls=None, planter=None, n_conds=3):
    """One localizer probe on family ``name``'s tiny model with the capture installed.
    Returns (capture, SDPA kernel calls, latent)."""
    fam, model = tb.FAMILIES[name], tb.model(name)
    latent = fam.latent(*latent_hw) if latent is None else latent
    conds = [fam.cond(TXT, c) for c in range(n_conds)] if conds is None else conds
    cap = capture_module().AttentionCapture(model, weights(fam), latent.shape)
    clone = model.clone()
    options = clone.model_options.setdefault("transformer_options", {})
    if spy_calls is not None:
        def spy(func, *args, **kwargs):  # another node's override: the capture chains it
            heads = args[3] if len(args) > 3 else kwargs["heads"]
            skip = kwargs.get("skip_reshape", False)
            mask = args[4] if len(args) > 4 else kwargs.get("mask")
            spy_calls.append({"q": as_heads(args[0], heads, skip).double(),
                              "k": as_heads(args[1], heads, skip).double(),
                              "mask": None if mask is None else mask.clone(),
                              "conds": list(kwargs["transformer_options"]["cond_or_uncond"])})
            return func(*args, **kwargs)
        options["optimized_attention_override"] = spy
    cap.patch(clone)
    if planter is not None:
        inner = options["optimized_attention_override"]
        options["optimized_attention_override"] = lambda func, *a, **kw: planter(inner, func, *a, **kw)
    # the kernel calls made inside model calls (Anima's LLM adapter attends while ComfyUI
    # prepares the conditioning, before any model call: text preprocessing, not read)
    count, inside = [0], [False]

    def in_model(executor, *a, **kw):
        inside[0] = True
        try:
            return executor(*a, **kw)
        finally:
            inside[0] = False

    comfy.patcher_extension.add_wrapper_with_key(
        comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test_count", in_model,
        clone.model_options, is_model_options=True)
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting(*a, **kw):
        count[0] += inside[0]
        return real_sdpa(*a, **kw)

    torch.nn.functional.scaled_dot_product_attention = counting
    try:
        noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(5))
        capture_module().probe(clone, conds, latent, noise, 0.5, 0)
    finally:
        torch.nn.functional.scaled_dot_product_attention = real_sdpa
    return cap, count[0], latent


# --- (2) captured maps = brute force ----------------------------------------------------------

def cell_matrix(grid, f):
    """(tokens, cells) one-hot: which kept cell each token of ``grid`` falls in."""
    gh, gw = grid
    pw = ceil_div(gw, f)
    cell = torch.tensor([(i // f) * pw + (j // f) for i in range(gh) for j in range(gw)])
    return torch.nn.functional.one_hot(cell, ceil_div(gh, f) * pw).double()


def brute_force(fam, model, calls, latent_hw):
    """Mean over the read calls of CA per conditioning and of SA (conditioning 0), pooled on
    the kept grid, from the recorded q/k -- softmax over all keys with the call's mask,
    image->text summed over the content tokens, image->image renormalised over image keys."""
    grid, ranges, f = facts(fam, latent_hw)
    onehot = cell_matrix(grid, f)
    img = grid[0] * grid[1]
    cross, selfs = {c: [] for c in CONTENT}, []
    forwards = []
    for call in calls:  # the probe's forwards: one per group of conditionings
        if not forwards or forwards[-1][0] != call["conds"]:
            forwards.append((call["conds"], []))
        forwards[-1][1].append(call)
    w8 = weights(fam)
    for conds, fcalls in forwards:
        kinds = [kind_of(fam, grid, ranges, c["q"].shape[2], c["k"].shape[2]) for c in fcalls]
        for i in read_calls(fam, model, kinds):
            call, kind = fcalls[i], kinds[i]
            q, k = call["q"], call["k"]
            size = q.shape[0] // len(conds)
            qa, qb = ranges["img"] if ranges else (0, img)
            logits = q[:, :, qa:qb] @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
            if call["mask"] is not None:  # SDPA's broadcasting (the kernel these tests use)
                m = call["mask"]
                m = m[None, None] if m.ndim == 2 else m[:, None] if m.ndim == 3 else m
                m = m[..., qa:qb, :] if m.shape[-2] > 1 else m
                logits = logits.masked_fill(~m, float("-inf")) if m.dtype == torch.bool \
                    else logits + m.double()
            for j, c in enumerate(conds):
                part = logits[j * size:(j + 1) * size]
                if kind in ("joint", "cross"):
                    w = torch.zeros(k.shape[2], dtype=torch.float64)
                    for seg, ws in w8[c].items():
                        if kind == "cross":
                            w[:] = placed(fam, ws, k.shape[2]).double()
                        else:
                            a, b = ranges[seg]
                            w[a:b] = placed(fam, ws, b - a).double()
                    ca = (part.softmax(-1) @ (w / w.sum())).mean(1)  # (B, img)
                    cross[c].append(ca @ onehot / onehot.sum(0))
                if c == 0 and kind in ("joint", "self"):
                    sa = part[..., qa:qb].softmax(-1).mean(1)  # image keys only
                    selfs.append(onehot.t() @ sa @ onehot / onehot.sum(0)[:, None])
    return ({c: torch.stack(v).mean(0) for c, v in cross.items() if v},
            torch.stack(selfs).mean(0) if selfs else None)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_call_is_seen_and_maps_equal_brute_force(name):
    """(1) the kernel's calls (SDPA, counted underneath ComfyUI) = the calls the capture saw
    = the calls another node's override saw; (2) the maps = the brute force."""
    fam, model = tb.FAMILIES[name], tb.model(name)
    for hw in sizes(name):
        latent_hw = fam.size(*hw)
        calls = []
        cap, kernel_calls, _ = probe(name, latent_hw, spy_calls=calls)
        assert kernel_calls > 0
        assert cap.calls_seen == kernel_calls == len(calls), (hw, cap.calls_seen, kernel_calls)
        cross, sa = brute_force(fam, model, calls, latent_hw)
        acc = cap.acc
        assert sorted(acc.cross_keys()) == sorted(cross) == [0, 1, 2], (name, hw)
        for c, expect in cross.items():
            got = acc.cross_map(c).reshape(expect.shape).double()
            assert torch.allclose(got, expect, atol=1e-6), (name, hw, c, (got - expect).abs().max())
        got = acc.self_matrix().double()
        assert torch.allclose(got, sa, atol=1e-6), (name, hw, (got - sa).abs().max())
        assert torch.allclose(got.sum(-1), torch.ones_like(got.sum(-1)), atol=1e-5)


def test_a_models_attention_mask_is_applied_as_the_kernel_applies_it():
    """FLUX with an attention mask on its conditioning (as Style Model Apply's attn_bias
    makes it: additive, text + image tokens squared, upscaled by ComfyUI to the image's
    tokens): the maps equal the brute force with that mask -- and differ from the maps
    without it."""
    fam, model = tb.FAMILIES["flux"], tb.model("flux")
    latent_hw = fam.size(*SIZES[1])
    bias = torch.zeros(1, TXT + 1, TXT + 1, dtype=torch.float16)
    bias[:, TXT:, 3] = -2.0  # image queries lean away from text token 3, and from 5 more
    bias[:, TXT:, 5] = -9.0  # (finite: ComfyUI's bilinear upscaling of the mask makes -inf NaN)
    conds = []
    for c in range(3):
        (emb, opts), = fam.cond(TXT, c)
        conds.append([[emb, {**opts, "attention_mask": bias,
                             "attention_mask_img_shape": (1, 1)}]])
    calls = []
    cap, _, _ = probe("flux", latent_hw, conds=conds, spy_calls=calls)
    assert any(c["mask"] is not None for c in calls)
    cross, sa = brute_force(fam, model, calls, latent_hw)
    for c, expect in cross.items():
        got = cap.acc.cross_map(c).reshape(expect.shape).double()
        assert torch.allclose(got, expect, atol=1e-6), (c, (got - expect).abs().max())
    assert torch.allclose(cap.acc.self_matrix().double(), sa, atol=1e-6)
    plain, _, _ = probe("flux", latent_hw)
    assert not torch.allclose(plain.acc.cross_map(0), cap.acc.cross_map(0), atol=1e-4)


# --- (5) which rows of a call are what: checked against the real models -----------------------

def _rows_changed(a, b):
    return set(((a - b).abs().amax(dim=(0, 1, 3)) > 1e-9).nonzero().flatten().tolist())


def _first_image_call(calls, grid, ranges):
    """The first call whose queries are the image alone (with the model's image padding,
    Z-Image's) or the joint sequence."""
    img = grid[0] * grid[1]
    padded = img + (ranges["img_pad"][1] - ranges["img_pad"][0] if "img_pad" in ranges else 0)
    total = max(b for _, b in ranges.values())
    for i, c in enumerate(calls):
        if c["q"].shape[2] in (img, padded, total) and c["q"].shape[2] == c["k"].shape[2]:
            return i, (ranges["img"][0] if c["q"].shape[2] == total else 0)
    raise AssertionError("no call sees the image")


@pytest.mark.parametrize("name", [n for n in FAMILIES if n not in tb.UNETS])
def test_token_facts_hold_in_the_real_model(name):
    """Perturb one latent pixel, the text, the reference latent: exactly the rows this test
    says are image / text / reference tokens change -- in the first joint call, and (for
    the image) exactly one row, the pixel's token in row-major order, in the first call
    that sees the image."""
    fam = tb.FAMILIES[name]
    latent_hw = fam.size(*sizes(name)[-1])
    grid, ranges, _ = facts(fam, latent_hw)
    base = fam.latent(*latent_hw)
    cond = fam.cond(TXT, 0)

    def run(latent=base, cond=cond):
        calls = []
        probe(name, latent_hw, conds=[cond], latent=latent, spy_calls=calls, n_conds=1)
        return calls

    ref = run()
    r0, c0 = latent_hw[0] - 2, latent_hw[1] // 2 + 1  # an odd place
    moved = base.clone()
    moved[..., r0, c0] += 1.0
    changed = run(latent=moved)
    other = [[cond[0][0] * -1.0, dict(cond[0][1])]]
    text_changed = run(cond=other)
    token = (r0 // fam.patch) * grid[1] + c0 // fam.patch
    kinds = [kind_of(fam, grid, ranges, c["q"].shape[2], c["k"].shape[2]) for c in ref]
    if not ranges:  # self- and cross-attention: the image's queries, the text's keys
        first, cross = kinds.index("self"), kinds.index("cross")
        assert _rows_changed(ref[first]["q"], changed[first]["q"]) == {token}
        assert not _rows_changed(ref[first]["q"], text_changed[first]["q"])
        assert _rows_changed(ref[cross]["k"], text_changed[cross]["k"]) == set(range(TXT))
        return
    joint = kinds.index("joint")
    first, offset = _first_image_call(ref, grid, ranges)
    assert _rows_changed(ref[first]["q"], changed[first]["q"]) == {offset + token}
    def run_of(seg):  # a segment with the pad tokens the model appends to it (Z-Image's)
        return set(range(*ranges[seg])) | set(range(*ranges.get(seg + "_pad", (0, 0))))

    rows = _rows_changed(ref[joint]["q"], changed[joint]["q"])
    assert rows and rows <= run_of("img")
    text = [s for s in ("txt", "t5") if s in ranges][0]
    rows = _rows_changed(ref[joint]["q"], text_changed[joint]["q"])
    assert rows and rows <= run_of(text)
    if fam.refs:
        refs = dict(cond[0][1])
        refs["reference_latents"] = [r * -1.0 for r in refs["reference_latents"]]
        rows = _rows_changed(ref[joint]["q"], run(cond=[[cond[0][0], refs]])[joint]["q"])
        assert rows and rows <= set(range(*ranges["ref"]))
    if fam.registers:  # registers change with neither the latent nor the text
        assert not set(range(*ranges["reg"])) & (
            _rows_changed(ref[joint]["q"], changed[joint]["q"]) |
            _rows_changed(ref[joint]["q"], text_changed[joint]["q"]))


@pytest.mark.parametrize("name", EXCLUDING)
def test_reference_and_register_tokens_never_reach_the_maps(name):
    """The maps have one row per image cell (never a reference or register token), the
    self-attention renormalises over image keys alone, and the text weights put nothing
    on reference / register keys: equal to the brute force that slices them out."""
    fam, model = tb.FAMILIES[name], tb.model(name)
    latent_hw = fam.size(*SIZES[1])
    calls = []
    cap, _, _ = probe(name, latent_hw, spy_calls=calls)
    grid, ranges, f = facts(fam, latent_hw)
    excluded = [s for s in ("ref", "reg", "txt_pad", "img_pad")
                if s in ranges and ranges[s][1] > ranges[s][0]]
    assert excluded
    cells = ceil_div(grid[0], f) * ceil_div(grid[1], f)
    assert cap.acc.self_matrix().shape[-1] == cells and cap.acc.cross_map(0).numel() == cells
    cross, sa = brute_force(fam, model, calls, latent_hw)
    assert torch.allclose(cap.acc.self_matrix().double(), sa, atol=1e-6)
    layout = capture_module().model_layout(model)
    for seg in excluded:
        assert seg in layout.order and seg not in [t.name for t in layout.text]


@pytest.mark.parametrize("name", ["cosmos_predict2", "auraflow", "flux", "flux2"])
def test_padding_tokens_never_count(name):
    """T5 padding (Cosmos: to 512, AuraFlow: to 256, FLUX: to 256) and Qwen3's (FLUX.2
    Klein: to 512, after its chat template) get weight 0: the content tokens are exactly
    the prompt's words."""
    layout = capture_module().model_layout(tb.model(name))
    clip = tiny_text.text_encoder(name)
    encoded = pack_module("nodes.prompt_tokens").encode_prompt(clip, "a photo of a cat", layout)
    w, ids = encoded.segments["txt"]
    assert w.shape[0] in (256, 512) and encoded.cond[0][0].shape[1] == w.shape[0]
    assert 0 < int(w.sum()) <= 8 and not w[-100:].any()


# --- (3) a planted boundary lands on the right latent cells -----------------------------------

def planting(fam, grid, ranges, region_cols):
    """An override set around the capture's: on every call the localizer may read, q/k are
    replaced so that under conditioning 2 ("low-quality") the image tokens of columns
    < ``region_cols`` attend to the content text tokens, and conditioning 0's image tokens
    attend to themselves (self-attention ~ identity)."""
    img = grid[0] * grid[1]
    cols = torch.arange(img) % grid[1]
    w8 = weights(fam)

    def plant(inner, func, *args, **kwargs):
        q, k, v = args[:3]
        heads = args[3] if len(args) > 3 else kwargs["heads"]
        skip = kwargs.get("skip_reshape", False)
        qh, kh = as_heads(q, heads, skip), as_heads(k, heads, skip)
        kind = kind_of(fam, grid, ranges, qh.shape[2], kh.shape[2])
        if kind == "other":
            return inner(func, *args, **kwargs)
        conds = kwargs["transformer_options"]["cond_or_uncond"]
        size = qh.shape[0] // len(conds)
        g = torch.Generator().manual_seed(3)
        qa, qb = ranges["img"] if ranges else (0, img)
        qn, kn = torch.zeros_like(qh), torch.zeros_like(kh)
        noise = torch.randn(qh.shape[1], img, qh.shape[3], generator=g) * 3
        noise[..., 0] = 0
        for j, c in enumerate(conds):
            part = slice(j * size, (j + 1) * size)
            if kind in ("joint", "self"):
                qn[part, :, qa:qb] = noise
                kn[part, :, qa:qb] = noise
            if kind in ("joint", "cross"):
                for seg, ws in w8[c].items():
                    a = 0 if kind == "cross" else ranges[seg][0]
                    ws = placed(fam, ws, kh.shape[2] if kind == "cross" else ranges[seg][1] - a)
                    for t in ws.nonzero().flatten().tolist():
                        kn[part, :, a + t, 0] = 8.0
                if c == 2:
                    rows = qa + (cols < region_cols).nonzero().flatten()
                    qn[part, :, rows] = 0
                    qn[part, :, rows, 0] = 20.0
        if not skip:
            qn = qn.transpose(1, 2).reshape(q.shape)
            kn = kn.transpose(1, 2).reshape(k.shape)
        return inner(func, qn.to(q.dtype), kn.to(k.dtype), v, *args[3:], **kwargs)

    return plant


@pytest.mark.parametrize("name", FAMILIES)
def test_planted_boundary_lands_on_the_right_latent_cells(name):
    fam = tb.FAMILIES[name]
    localizer = pack_module("nodes.localizer")
    for hw in [(11, 21) if not fam.even_only else (12, 22)]:
        latent_hw = fam.size(*hw)
        grid, ranges, f = facts(fam, latent_hw)
        kept = (ceil_div(grid[0], f), ceil_div(grid[1], f))
        boundary = max(1, kept[1] // 2)
        cap, _, _ = probe(name, latent_hw, planter=planting(fam, grid, ranges, boundary * f))
        assert cap.acc.grid == kept
        mask, _ = localizer.mask_and_map(cap, latent_hw, boundary / kept[1], 0.0)
        edge = boundary * (UNET_LEVEL if fam.name in tb.UNETS
                           else fam.patch * f)  # latent pixels left of the boundary
        assert mask.shape == (1, *latent_hw), (name, hw)
        assert torch.equal(mask[0, :, :edge], torch.ones(latent_hw[0], edge)), (name, hw)
        assert not mask[0, :, edge:].any(), (name, hw)


# --- (4) LoTTS Sampler end to end, the region outside the noise mask kept ---------------------

class MeanVerifier:
    name = "mean"

    def score(self, images, prompt, batch_size=None):
        return images.float().mean(dim=(1, 2, 3))


class ChannelVAE:
    """Decodes any family's latent for the verifier: 3 channels at the image's size
    (``scale`` pixels per latent pixel); these tests score, they do not look."""

    def __init__(self, scale):
        self.scale = scale

    def decode(self, samples):
        x = samples.reshape(samples.shape[0], samples.shape[1], *samples.shape[-2:]).float()
        rgb = x[:, :3] if x.shape[1] >= 3 else x[:, :1].expand(-1, 3, -1, -1)
        rgb = torch.nn.functional.interpolate(rgb.tanh() * 0.5 + 0.5, scale_factor=self.scale)
        return rgb.movedim(1, -1)


@pytest.mark.parametrize("name", [n for n in FAMILIES if n in tiny_text.BUILDERS
                                  and n not in ("sd21v", "sdxl")])  # U-Nets: test_inpainting.py
def test_lotts_sampler_keeps_the_region_outside_the_noise_mask(name):
    fam, model = tb.FAMILIES[name], tb.model(name)
    clip = tiny_text.text_encoder(name)
    prompt = "a photo of a cat"
    pos = clip.encode_from_tokens_scheduled(clip.tokenize(prompt))
    neg = clip.encode_from_tokens_scheduled(clip.tokenize("blurry"))
    if fam.refs:  # the edit families: the reference latent rides on the conditioning
        ref = {"reference_latents": [fam.latent(*fam.size(*fam.refs[0]), seed=9)]}
        pos = [[c, {**o, **ref}] for c, o in pos]
        neg = [[c, {**o, **ref}] for c, o in neg]
    h, w = fam.size(12, 12)
    src = fam.latent(h, w, seed=2)
    if fam.frames:
        src = src[:, :, 0]  # an empty-latent node's 4-D latent; ComfyUI adds the frame axis
    px = fam.latent_scale  # image pixels per latent pixel
    m = torch.zeros(1, h * px, w * px)
    m[:, : h * px // 2, : w * px // 2] = 1  # the top-left quarter may change
    latent = comfy_nodes.SetLatentNoiseMask().set_mask({"samples": src}, m)[0]
    before = model_state(model)
    out = run_node("LoTTSSampler", model, clip, ChannelVAE(px), pos, neg, prompt, MeanVerifier(),
                   latent, 0, 2, 1, 1, 3, 1.0, "euler", "simple", 1, 1, 0.5, 0.5)
    assert model_state(model) == before
    best = out.result[1]["samples"]
    ref = comfy.sample.fix_empty_latent_channels(model, src)
    keep = torch.ones_like(ref, dtype=torch.bool)
    keep[..., : h // 2, : w // 2] = False
    assert best.shape[-2:] == ref.shape[-2:]
    assert (best - ref)[keep].abs().max() <= 1e-5, name
    masks = out.result[3]
    assert masks.shape[-2:] == (h * px, w * px)  # the image's own size, whatever the VAE
    assert not masks[:, h * px // 2:].any() and not masks[:, :, w * px // 2:].any()
    (info,) = out.ui["lotts_localizer"]
    assert info["backbone"] == type(model.model).__name__ and info["blocks"]


# --- refusals and chaining ---------------------------------------------------------------------

HQ, LQ = "A high-quality image of {p}", "A low-quality image of {p}"


def localize(model, clip, cands, **kw):
    return run_node("LoTTSDefectLocalizer", model, clip, "a photo of a cat", cands, 0.5, 0.5, 1,
                    HQ, LQ, 0, steps=3, scheduler="simple", **kw)


def test_pixart_bypasses_the_hook_and_is_refused_saying_why():
    """PixArt's attention calls carry no transformer_options: the kernel runs, the
    override never sees it -- so the localizer refuses PixArt up front, with the reason."""
    model = tb.model("pixart")
    seen, count = [], [0]
    clone = model.clone()
    clone.model_options["transformer_options"]["optimized_attention_override"] = \
        lambda func, *a, **kw: (seen.append(1), func(*a, **kw))[1]
    real = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = \
        lambda *a, **kw: (count.__setitem__(0, count[0] + 1), real(*a, **kw))[1]
    try:
        latent = torch.randn(1, 4, 64, 64)  # PixArt's position embedding needs >= 32 px sides
        cond = [[torch.randn(1, 7, 4096), {}]]
        capture_module().probe(clone, [cond], latent, torch.randn_like(latent), 0.5, 0)
    finally:
        torch.nn.functional.scaled_dot_product_attention = real
    assert count[0] > 0 and not seen
    with pytest.raises(ValueError, match=r"PixArt.*\(PixArt \(diffusion model PixArtMS\)\): its "
                                         r"attention calls .* do not pass transformer_options"):
        capture_module().model_layout(model)


def test_a_model_without_layout_is_refused_naming_its_class():
    model = tb.model("hunyuan_video")
    cands = {"samples": torch.zeros(1, 16, 1, 8, 8)}
    with pytest.raises(ValueError, match=r"cannot read the attention of this MODEL, a "
                                         r"HunyuanVideo \(diffusion model HunyuanVideo\)"):
        localize(model, tiny_text.text_encoder("flux"), cands)


def test_calls_that_do_not_match_the_layout_are_refused_naming_the_class():
    """A node that skips a block (as a cache does) leaves fewer joint calls than the
    layout says: refused with the model class, never read from the wrong tokens."""
    model = tb.model("flux").clone()
    model.set_model_patch_replace(lambda args, extra: {"img": args["img"], "txt": args["txt"]},
                                  "dit", "double_block", 1)
    cands = {"samples": torch.randn(1, 16, 8, 8)}
    with pytest.raises(ValueError, match=r"the attention calls of this Flux do not match the "
                                         r"layout of FLUX.*: 4 joint attention calls, expected 5"
                                         r".*replace patches \(dit\)"):
        localize(model, tiny_text.text_encoder("flux"), cands)


def test_an_attention_replace_patch_is_named_when_calls_go_missing():
    """An attn2 replace patch (an IP-Adapter's way) runs cross-attention without ComfyUI's
    override: the U-Net's cross-attention calls go missing and the refusal says why."""
    import comfy.ldm.modules.attention as attention
    model = tb.model("sd15").clone()
    patch = lambda q, k, v, extra: attention.optimized_attention(q, k, v, extra["n_heads"])  # noqa: E731
    for block in capture_module().unet_attention_blocks(model.get_model_object("diffusion_model")):
        model.set_model_attn2_replace(patch, block[0], block[1])
    cands = {"samples": torch.randn(1, 4, 12, 12)}
    with pytest.raises(ValueError, match=r"self- and 0 cross-attention calls .*replace patches "
                                         r"\(attn2\)"):
        localize(model, tiny_text.text_encoder("sd15"), cands)


def test_another_nodes_override_is_chained_and_its_output_kept():
    """An override set by another node sees every call and its output is what the model
    gets; the localizer's masks are the ones it makes without it when that override
    changes nothing."""
    model, clip = tb.model("qwen_image"), tiny_text.text_encoder("qwen_image")
    cands = {"samples": torch.randn(1, 16, 1, 8, 10, generator=torch.Generator().manual_seed(4))}
    plain = localize(model, clip, cands).result
    seen = []
    other = model.clone()
    other.model_options["transformer_options"]["optimized_attention_override"] = \
        lambda func, *a, **kw: (seen.append(1), func(*a, **kw))[1]
    chained = localize(other, clip, cands).result
    assert len(seen) == 3 * 4  # three forwards (the prompts' lengths differ) x 4 blocks
    assert torch.equal(plain[0], chained[0]) and torch.equal(plain[1], chained[1])
    assert other.model_options["transformer_options"]["optimized_attention_override"] is not None
    assert "wrappers" not in other.model_options["transformer_options"] or not any(
        "lotts" in str(k) for w in other.model_options["transformer_options"]["wrappers"].values()
        for k in w)


def test_unet_self_and_cross_with_equal_token_counts_are_told_apart_by_order():
    """A 12x16 latent's latent/4 level has 12 positions; a 12-token text makes its cross-
    attention the same shape as its self-attention. ComfyUI's transformer block calls
    self-attention first: the maps still equal the brute force."""
    fam, model = tb.FAMILIES["sd15"], tb.model("sd15")
    conds = [[[torch.randn(1, 12, 64, generator=torch.Generator().manual_seed(c)), {}]]
             for c in range(3)]
    w = {c: {"txt": torch.tensor([0.] + [1.] * 10 + [0.])} for c in range(3)}
    latent = fam.latent(12, 16)
    cap = capture_module().AttentionCapture(model, w, latent.shape)
    assert cap.grid == (3, 4)
    calls = []
    clone = model.clone()
    clone.model_options["transformer_options"]["optimized_attention_override"] = \
        lambda func, *a, **kw: (calls.append((a[0].shape[1], a[1].shape[1])), func(*a, **kw))[1]
    cap.patch(clone)
    capture_module().probe(clone, conds, latent, torch.zeros_like(latent), 0.5, 0)
    level = [c for c in calls if c[0] == 12]
    assert level and all(c == (12, 12) for c in level)  # every call there looks alike
    assert cap.acc.layers_seen == (len(level) // 4, len(level) // 4)  # 2 forwards, self+cross
    assert sorted(cap.acc.cross_keys()) == [0, 1, 2]
