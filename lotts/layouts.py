"""Where the image and the text sit in each backbone's attention calls -- facts, as data.

LoTTS reads every backbone's attention through one hook (ComfyUI's attention override:
each call's q/k after RoPE, q/k-norm and head expansion, and its mask). A call does not
say what its tokens are, so each forward's geometry is worked out from its inputs -- image
tokens from the latent and the patch size, text tokens from the conditioning, reference
tokens from the reference latents -- and each call is classified by token accounting:

* ``joint``: queries = keys = every segment of ``order`` (text and image in one softmax);
* ``self`` / ``cross`` (``separate`` families): image queries over image keys / over the
  text (a U-Net's text may be repeated whole when ComfyUI batches prompts of different
  lengths);
* any other square call (a text-only or image-only refiner, SD3.5's extra image-only
  attention): seen and counted, not read;
* anything else: the model does not match its layout, and the localizer refuses it.

Counts cannot tell text-first from image-first, hence ``order``. A new backbone needs a
row here (and its text encoder's facts in ``text``), not code. Verified on ComfyUI v0.3.64
(the newer families -- Z-Image, FLUX.2, Kandinsky 5, Anima -- on the 0.10 fork) with tiny
models built from ComfyUI's own classes (tests/host/test_backbones.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .blocks import dit_capture_blocks

# The grid LoTTS keeps its maps on: one cell per 32x32 image pixels (latent/4 for the
# 8x VAEs) -- a method choice, lotts/blocks.py says why.
KEPT_CELL_PIXELS = 32


@dataclass(frozen=True)
class TextSegment:
    """One run of text tokens in the attention calls.

    ``source``: the forward input whose length it has (``c_crossattn``: the conditioning
    tensor), read on dim ``dim``, or the input that *is* the count (``dim=None``, Lumina 2's
    ``num_tokens``: its text without padding). ``option``: the conditioning option that holds
    this text's embedding (None: the conditioning tensor). ``tokens``: the tokenizer keys
    that may have made it (empty: chosen by length among all the CLIP's tokenizers).
    ``cut_head``: the text encoder drops the head of its chat template, so the conditioning
    holds the *last* tokens the tokenizer made. ``content``: False for a segment whose
    tokens never count in the maps (HunyuanImage's ByT5 glyph tokens). ``option_dim``: the
    dim of ``option`` that counts the tokens, where it is not ``dim`` (Anima's T5 token
    ids, a 1-D tensor). ``padded``: the model itself pads this text, at its ``head`` or
    ``tail``, with tokens of its own (FLUX.2 to 512 at the head, Anima to 512 at the tail):
    the call holds more tokens than the prompt made, and the extra ones never count.
    """
    name: str
    source: str = "c_crossattn"
    dim: int | None = 1
    option: str | None = None
    tokens: tuple[str, ...] = ()
    cut_head: bool = False
    content: bool = True
    option_dim: int | None = None
    padded: str | None = None


@dataclass(frozen=True)
class Layout:
    """One backbone family's attention layout.

    ``classes``: ComfyUI's model classes (comfy.model_base) it describes -- a model's
    class or its nearest ancestor with a row; ``diffusion_model``: the network class it
    requires. ``attention``: ``joint`` or ``separate``. ``order``: the segments of a joint
    call (``img``, ``ref``: reference images, ``reg``: register tokens, or a text segment's
    name). ``patch``: latent pixels per image token side (the latent is padded up to it);
    ``latent_scale``: image pixels per latent pixel. ``blocks``: the diffusion model's
    module lists, in call order, whose every block makes one joint call (joint) or one
    self- and one cross-attention call (separate) -- the count each forward must show;
    ``read``: the list whose second half the maps are read from (lotts/blocks.py); none for
    a U-Net (its level at latent/4 is read). ``refs``: the forward input holding reference
    latents. ``refused``: why this family cannot be localized. ``pad_multiple``: the
    diffusion model's attribute holding the multiple the model pads each run of tokens up
    to with pad tokens of its own (Z-Image: 32; absent or None: no padding) -- a segment
    ``<name>_pad`` of ``order`` is that padding of segment ``<name>``, never read.
    """
    family: str
    classes: tuple[str, ...]
    diffusion_model: str
    attention: str = "joint"
    order: tuple[str, ...] = ("txt", "img")
    text: tuple[TextSegment, ...] = (TextSegment("txt"),)
    patch: int = 2
    latent_scale: int = 8
    registers: int = 0
    blocks: tuple[str, ...] = ()
    read: str | None = None
    refs: str | None = None
    refused: str | None = None
    how: str = ""
    excluded: tuple[str, ...] = field(default=())
    pad_multiple: str | None = None

    @property
    def pool(self) -> int:
        """Image tokens per kept map cell, per side."""
        return max(1, KEPT_CELL_PIXELS // (self.patch * self.latent_scale))


def _dit(family, classes, diffusion_model, order, **facts):
    return Layout(family, classes, diffusion_model, "joint", order, **facts)


_FLUX_BLOCKS = ("double_blocks", "single_blocks")
_REFUSED_BYPASS = ("its attention calls in ComfyUI v0.3.64 do not pass transformer_options, "
                   "so no attention override sees them; LoTTS reads attention only through "
                   "that hook")

LAYOUTS: tuple[Layout, ...] = (
    Layout("SD1.x / SD2.x / SDXL (U-Net)",
           ("BaseModel", "SDXL", "SDXLRefiner", "SD21UNCLIP", "SD_X4Upscaler", "Lotus",
            "Stable_Zero123", "SD15_instructpix2pix", "SDXL_instructpix2pix"),
           "UNetModel", attention="separate", order=(),
           how="self- and cross-attention at the latent/4 level; cross keys are the CLIP "
               "tokens (repeated whole to the longest prompt of a batch)"),
    _dit("SD3 / SD3.5 (MMDiT)", ("SD3",), "OpenAISignatureMMDITWrapper", ("txt", "img"),
         blocks=("joint_blocks",), read="joint_blocks",
         how="joint [text, image] attention of the second half of the joint blocks (SD3.5's "
             "extra image-only attentions are seen, not read)"),
    _dit("FLUX.1 (dev, schnell, Fill, Kontext)", ("Flux",), "Flux", ("txt", "img", "ref"),
         blocks=_FLUX_BLOCKS, read="double_blocks", refs="ref_latents", excluded=("ref",),
         how="joint [text, image, reference] attention of the second half of the double "
             "blocks; Kontext's reference tokens are left out"),
    _dit("Chroma", ("Chroma",), "Chroma", ("txt", "img"), blocks=_FLUX_BLOCKS,
         read="double_blocks",
         how="as FLUX: joint [text, image] attention of the second half of the double blocks"),
    _dit("Chroma Radiance (pixel space)", ("ChromaRadiance",), "ChromaRadiance",
         ("txt", "img"), blocks=_FLUX_BLOCKS, read="double_blocks", patch=16, latent_scale=1,
         how="as FLUX, on 16x16-pixel patches of the image itself"),
    _dit("HiDream", ("HiDream",), "HiDreamImageTransformer2DModel",
         ("img", "t5", "llama", "llama_k"),
         blocks=("double_stream_blocks", "single_stream_blocks"), read="double_stream_blocks",
         text=(TextSegment("t5", tokens=("t5xxl",)),
               TextSegment("llama", "encoder_hidden_states_llama3", 2, "conditioning_llama3",
                           ("llama",)),
               TextSegment("llama_k", "encoder_hidden_states_llama3", 2, "conditioning_llama3",
                           ("llama",))),
         how="joint [image, T5, Llama, Llama layer k] attention of the second half of the "
             "double-stream blocks"),
    _dit("Qwen-Image (and Qwen-Image-Edit)", ("QwenImage",), "QwenImageTransformer2DModel",
         ("txt", "img", "ref"), blocks=("transformer_blocks",), read="transformer_blocks",
         text=(TextSegment("txt", tokens=("qwen25_7b",), cut_head=True),),
         refs="ref_latents", excluded=("ref",),
         how="joint [text, image, reference] attention of the second half of the blocks; the "
             "edit model's reference tokens are left out"),
    # Z-Image is a Lumina 2 model class with a NextDiT of its own width (ComfyUI 0.3.75+):
    # it pads its text and its image tokens each up to a multiple of 32 with learned pad
    # tokens, and reads Qwen3-4B's chat template whole (user turn, no system prompt)
    _dit("Lumina 2, Z-Image", ("Lumina2",), "NextDiT", ("txt", "txt_pad", "img", "img_pad"),
         blocks=("layers",), read="layers", pad_multiple="pad_tokens_multiple",
         text=(TextSegment("txt", "num_tokens", None, tokens=("gemma2_2b", "qwen3_4b")),),
         how="single-stream [text, image] attention of the second half of the main layers "
             "(the text and image refiners are seen, not read; Z-Image's pad tokens are left "
             "out)"),
    _dit("HunyuanImage 2.1", ("HunyuanImage21",), "HunyuanVideo", ("img", "txt", "byt5"),
         blocks=_FLUX_BLOCKS, read="double_blocks", patch=1, latent_scale=32,
         text=(TextSegment("txt", tokens=("qwen25_7b",), cut_head=True),
               TextSegment("byt5", "txt_byt5", 1, "conditioning_byt5small", ("byt5",),
                           content=False)),
         how="joint [image, text, ByT5] attention of the second half of the double blocks; "
             "ByT5 glyph tokens never count"),
    Layout("Cosmos Predict2 (text to image)", ("CosmosPredict2",), "MiniTrainDIT",
           attention="separate", order=(), blocks=("blocks",), read="blocks",
           text=(TextSegment("txt", tokens=("t5xxl",)),),
           how="self- and cross-attention of the second half of the blocks; cross keys are "
               "the T5 tokens (padded to 512: the padding never counts)"),
    _dit("AuraFlow", ("AuraFlow",), "MMDiT", ("reg", "txt", "img"),
         blocks=("double_layers", "single_layers"), read="double_layers", registers=8,
         text=(TextSegment("txt", tokens=("pile_t5xl",)),), excluded=("reg",),
         how="joint [registers, text, image] attention of the second half of the double "
             "layers; the 8 register tokens are left out"),
    _dit("OmniGen2", ("Omnigen2",), "OmniGen2Transformer2DModel", ("txt", "ref", "img"),
         blocks=("layers",), read="layers", refs="ref_latents", excluded=("ref",),
         text=(TextSegment("txt", tokens=("qwen25_3b",)),),
         how="single-stream [text, reference, image] attention of the second half of the "
             "main layers; reference tokens are left out"),
    # FLUX.2 (ComfyUI 0.3.75+): FLUX's network with 1x1 patches of a 128-channel latent at
    # 1/16 of the image; the model pads the text at its head to 512 (Mistral-3 for dev;
    # Klein's Qwen3 tokenizer pads to 512 itself); edit references follow the image
    _dit("FLUX.2 (dev, Klein)", ("Flux2",), "Flux", ("txt", "img", "ref"), blocks=_FLUX_BLOCKS,
         read="double_blocks", patch=1, latent_scale=16, refs="ref_latents", excluded=("ref",),
         text=(TextSegment("txt", tokens=("mistral3_24b", "qwen3_4b", "qwen3_8b"),
                           padded="head"),),
         how="joint [text, image, reference] attention of the second half of the double "
             "blocks; edit reference tokens and the model's text padding are left out"),
    # Kandinsky 5 image (ComfyUI of December 2025 on): text blocks (text self-attention, seen, not
    # read), then visual blocks of image self-attention and image->text cross-attention;
    # Qwen2.5-VL with the head of its template cut by the encoder, as Qwen-Image
    Layout("Kandinsky 5 (image)", ("Kandinsky5Image",), "Kandinsky5", attention="separate",
           order=(), blocks=("visual_transformer_blocks",), read="visual_transformer_blocks",
           text=(TextSegment("txt", tokens=("qwen25_7b",), cut_head=True),),
           how="self- and cross-attention of the second half of the visual blocks; cross "
               "keys are the Qwen2.5-VL tokens after the template's cut head"),
    # Anima (ComfyUI 0.10): Cosmos Predict2's network; its LLM adapter turns the Qwen3
    # hidden states into one embedding per T5 token of the prompt, padded at the tail to 512
    Layout("Anima", ("Anima",), "Anima", attention="separate", order=(), blocks=("blocks",),
           read="blocks",
           text=(TextSegment("txt", option="t5xxl_ids", option_dim=0, tokens=("t5xxl",),
                             padded="tail"),),
           how="self- and cross-attention of the second half of the blocks; cross keys are "
               "the prompt's T5 tokens (the model's padding to 512 never counts)"),
    Layout("PixArt alpha / sigma", ("PixArt",), "PixArtMS", refused=_REFUSED_BYPASS),
    Layout("HunyuanDiT", ("HunyuanDiT",), "HunYuanDiT", refused=_REFUSED_BYPASS),
)


def layout_for(class_names: list[str], diffusion_model: str) -> Layout | None:
    """The layout of a model whose class and ancestors are ``class_names`` (nearest
    first) and whose network is a ``diffusion_model``, or None."""
    for name in class_names:
        for layout in LAYOUTS:
            if name in layout.classes:
                return layout if layout.diffusion_model == diffusion_model else None
    return None


def token_grid(latent_hw: tuple[int, int], patch: int) -> tuple[int, int]:
    """The image token grid of a latent: the model pads it up to the patch size."""
    return -(-latent_hw[0] // patch), -(-latent_hw[1] // patch)


def segment_ranges(order: tuple[str, ...], lengths: dict[str, int]) -> dict[str, tuple[int, int]]:
    """``{segment: (start, end)}`` in a joint call whose segments come in ``order``."""
    out, at = {}, 0
    for name in order:
        n = int(lengths.get(name, 0))
        out[name] = (at, at + n)
        at += n
    return out


def classify(layout: Layout, nq: int, nk: int, lengths: dict[str, int],
             expect_cross: bool = False) -> str:
    """What an attention call of ``nq`` queries over ``nk`` keys is, by token accounting:
    ``joint``, ``self``, ``cross``, ``other`` (a square call of one stream: a refiner, an
    image-only attention) or ``unknown`` (matches nothing the layout allows).

    ``lengths`` holds the forward's segment lengths (``img`` at the level read, every
    text segment, ``ref``, ``reg``). A separate family's call that could be either self- or
    cross-attention (as many image positions as repeated text tokens) is what
    ``expect_cross`` says: their blocks call self-attention first, then cross-attention."""
    img = lengths.get("img", 0)
    if layout.attention == "joint":
        total = sum(int(lengths.get(s, 0)) for s in layout.order)
        if nq == nk == total:
            return "joint"
        return "other" if nq == nk else "unknown"
    txt = lengths.get("txt", 0)
    is_self = nq == nk == img
    is_cross = nq == img and txt > 0 and nk % txt == 0
    if is_self and is_cross:
        return "cross" if expect_cross else "self"
    if is_self:
        return "self"
    if is_cross:
        return "cross"
    return "other"


def pad_lengths(order: tuple[str, ...], lengths: dict[str, int], multiple: int) -> dict[str, int]:
    """The lengths of the ``<name>_pad`` segments of ``order``: what pads ``<name>`` up to
    a multiple of ``multiple`` (0 where the model pads nothing)."""
    return {s: (-int(lengths.get(s[:-4], 0))) % multiple if multiple else 0
            for s in order if s.endswith("_pad")}


def fit_weights(w: torch.Tensor, n: int, padded: str | None) -> torch.Tensor | None:
    """A text segment's content weights ``w`` fitted to the ``n`` tokens the attention call
    holds, or None when they cannot be: padded with zeros at the side the model pads its
    text (``padded``), or cut of trailing zero weights (a text the model reads without its
    padding, Lumina 2)."""
    if w.shape[0] < n and padded in ("head", "tail"):
        pad = w.new_zeros(n - w.shape[0])
        return torch.cat([pad, w] if padded == "head" else [w, pad])
    if w.shape[0] > n and not w[n:].any():
        return w[:n]
    return w if w.shape[0] == n else None


def read_range(blocks: dict[str, int], layout: Layout) -> tuple[int, int]:
    """The calls (of the kind a block makes, counted from the forward's first) whose maps
    are read: the second half of ``layout.read``'s blocks. ``blocks``: each of
    ``layout.blocks``' length."""
    start = 0
    for name in layout.blocks:
        if name == layout.read:
            read = dit_capture_blocks(blocks[name])
            return (start + read[0], start + read[-1] + 1) if read else (start, start)
        start += blocks[name]
    raise ValueError(f"{layout.read!r} is not among the blocks {layout.blocks}")


def supported_families() -> list[str]:
    return [l.family for l in LAYOUTS if l.refused is None]
