"""Reducing captured attention into LoTTS's maps, on the fly.

A probe pass visits many attention layers, each with many heads. Keeping their
probability tensors would cost (layers x heads x positions x tokens) memory -- about 1 GB
per block per call for self-attention at a 64x64 latent in fp32 -- so every function here
is a running reduction: each call folds one layer's attention into a fixed-size sum and
drops it. What is kept is one spatial map per conditioning (cross-attention) and one
positions x positions matrix (self-attention), per image.

Shapes follow the host's projected attention inputs: ``q`` is ``(B, Nq, heads*dim)``,
``k`` is ``(B, Nk, heads*dim)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Upper bound on the elements of one temporary probability block (B x rows x keys).
# 2**22 fp32 elements = 16 MiB: a few of these live at once (logits, softmax, pooling).
# Blocks are also capped at 1/16 of q (head_mean_attention), which keeps capture within
# ~10% of the attention kernel's own memory (benchmarks/b3_attention_memory.py).
DEFAULT_CHUNK_ELEMENTS = 1 << 22


def _heads_view(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, N, heads*dim)`` or ``(B, heads, N, dim)`` as a ``(B, heads, N, dim)`` view."""
    if x.ndim == 4:
        return x
    if x.ndim != 3 or x.shape[-1] % heads:
        raise ValueError(f"attention input of shape {tuple(x.shape)} is not (B, N, heads*dim) "
                         f"with heads={heads} dividing its width, nor (B, heads, N, dim)")
    b, n, width = x.shape
    return x.view(b, n, heads, width // heads).transpose(1, 2)


def pooled_size(grid: tuple[int, int], f: int) -> tuple[int, int]:
    """The grid kept after pooling ``grid`` by ``f``: a partial last group still counts
    (a 19x29 grid pools by 2 to 10x15)."""
    return -(-grid[0] // f), -(-grid[1] // f)


def _pad_to_multiple(x: torch.Tensor, f: int) -> torch.Tensor:
    """Zero-pad the last two dims of ``x`` up to multiples of ``f``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % f, 0, (-h) % f))


def _sum_pool_keys(p: torch.Tensor, grid: tuple[int, int], f: int) -> torch.Tensor:
    """Sum attention over f x f groups of key positions: rows stay distributions.

    A grid side that is not a multiple of f ends in a partial group (zero padding adds
    nothing to a sum)."""
    b, r, _ = p.shape
    h, w = grid
    padded = _pad_to_multiple(p.reshape(b * r, 1, h, w), f)
    pooled = F.avg_pool2d(padded, f) * (f * f)
    return pooled.view(b, r, -1)


def _mean_pool_queries(p: torch.Tensor, w: int, f: int) -> torch.Tensor:
    """Average attention rows over f x f groups of query positions (whole grid rows).

    A partial group (the grid's last rows or columns) is averaged over the positions it
    really holds, not over f*f."""
    b, r, k = p.shape
    rows = r // w
    grid = _pad_to_multiple(p.view(b, rows, w, k).permute(0, 3, 1, 2), f)
    counts = _pad_to_multiple(p.new_ones(1, 1, rows, w), f)
    pooled = F.avg_pool2d(grid, f) / F.avg_pool2d(counts, f)
    return pooled.permute(0, 2, 3, 1).reshape(b, -1, k)


def pool_map(maps: torch.Tensor, f: int) -> torch.Tensor:
    """Mean-pool ``(B, h, w)`` maps by ``f`` onto :func:`pooled_size` -- the same groups
    (partial ones included) that pooled self-attention uses, so cross- and self-attention
    maps describe the same cells."""
    if f == 1:
        return maps
    counts = _pad_to_multiple(maps.new_ones(1, 1, *maps.shape[-2:]), f)
    pooled = F.avg_pool2d(_pad_to_multiple(maps.unsqueeze(1).float(), f), f)
    return (pooled / F.avg_pool2d(counts, f)).squeeze(1)


def _row_blocks(b: int, nq: int, nk: int, row_block: int, q_numel: int,
                max_chunk_elements: int | None) -> int:
    """Query rows per block: the temporaries (B x rows x keys) stay under the bound.

    The default bound is 1/16 of ``q``'s size, at most DEFAULT_CHUNK_ELEMENTS: the
    temporaries then stay a small fraction of what the attention kernel itself holds
    (its inputs and output), for a small U-Net level as for FLUX's 4096 tokens."""
    if max_chunk_elements is None:
        max_chunk_elements = min(DEFAULT_CHUNK_ELEMENTS, max(1 << 14, q_numel // 16))
    rows = max(1, min(nq, max_chunk_elements // max(1, b * nk)))
    return max(row_block, rows - rows % row_block)


def _check_qk(qh: torch.Tensor, kh: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> None:
    if qh.shape[0] != kh.shape[0] or qh.shape[1] != kh.shape[1] or qh.shape[3] != kh.shape[3]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must be (B, N, heads*dim) "
                         "with the same batch and width")


def _self_pool(pool, nq: int, nk: int):
    """(grid, f, row_block, kept positions) for pooled self-attention, checked."""
    if pool is None:
        return None, 1, 1, nq, nk
    (gh, gw), f = pool
    if nq != gh * gw or nk != gh * gw:
        raise ValueError(f"cannot pool a {gh}x{gw} grid by {f} for attention {nq}x{nk}")
    ph, pw = pooled_size((gh, gw), f)
    return (gh, gw), f, f * gw, ph * pw, ph * pw


def kernel_mask(mask: torch.Tensor | None, *, per_key_bool: bool = False) -> torch.Tensor | None:
    """An attention mask as ComfyUI's kernels apply it, as a 4-D tensor that broadcasts
    against the logits ``(B, heads, Nq, Nk)``.

    The SDPA-style kernels (pytorch, sage, flash, xformers) read a 2-D mask as
    ``(Nq, Nk)`` and a 3-D one as ``(B, Nq, Nk)``; ``attention_basic`` reads a *boolean*
    mask as one keep-flag per key (``per_key_bool``: everything after the batch dim
    flattened). A boolean mask keeps True entries; a float mask is added to the logits.
    """
    if mask is None:
        return None
    if per_key_bool and mask.dtype == torch.bool:
        return mask.reshape(mask.shape[0], 1, 1, -1)
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim == 3:
        mask = mask.unsqueeze(1)
    if mask.ndim != 4:
        raise ValueError(f"an attention mask of shape {tuple(mask.shape)} is not 2-, 3- or 4-D")
    return mask


def _masked(logits: torch.Tensor, mask: torch.Tensor | None, h: int, rows: slice) -> torch.Tensor:
    """``logits`` (B, rows, Nk) of head ``h`` with the 4-D ``mask`` applied, in place."""
    if mask is None:
        return logits
    m = mask[:, h if mask.shape[1] > 1 else 0]
    m = m[:, rows] if m.shape[1] > 1 else m
    if m.dtype == torch.bool:
        return logits.masked_fill_(~m.to(logits.device), float("-inf"))
    return logits.add_(m.to(logits.device, logits.dtype))


def attention_maps(q: torch.Tensor, k: torch.Tensor, heads: int, *,
                   query_rows: tuple[int, int] | None = None,
                   key_weights: torch.Tensor | None = None,
                   self_keys: tuple[int, int] | None = None,
                   self_out: torch.Tensor | None = None,
                   self_pool: tuple[tuple[int, int], int] | None = None,
                   self_weight: float = 1.0, mask: torch.Tensor | None = None,
                   scale: float | None = None,
                   max_chunk_elements: int | None = None) -> torch.Tensor | None:
    """The two maps LoTTS reads out of one attention call, as the model computes it.

    ``q``/``k`` are ``(B, N, heads*dim)`` or ``(B, heads, N, dim)`` (both layouts the host
    uses), the whole call's queries and keys; ``mask`` the call's mask as
    :func:`kernel_mask` returns it. Only the image queries ``query_rows = (a, b)`` (default
    all) are read:

    * image->text, when ``key_weights`` ``(Nk,)`` or ``(B, Nk)`` is given -- weights that
      sum to 1 over the content text keys, 0 on every other key:

          CA[b, i] = (1/H) sum_h sum_m softmax_m(q_h k_h^T * scale + mask)[i, m] * w[b, m]

      sliced out of the softmax over *all* the call's keys (a joint attention's text share
      differs between prompts); returned ``(B, b - a)``;
    * image->image, when ``self_out`` is given: the softmax renormalised over the image
      keys ``self_keys = (a, b)`` alone -- propagation needs rows that are distributions, and
      text, reference, register and padding keys are not positions of the image -- added
      (times ``self_weight / heads``) into ``self_out``, pooled by ``self_pool = ((h, w), f)``
      as :func:`head_mean_attention` describes.

    Computed one head and one block of query rows at a time, so the temporaries are
    bounded by ``max_chunk_elements`` whatever the head count (:func:`_row_blocks`).
    """
    qh, kh = _heads_view(q, heads), _heads_view(k, heads)
    _check_qk(qh, kh, q, k)
    b, _, nq_all, dim = qh.shape
    nk = kh.shape[2]
    qa, qb = query_rows if query_rows is not None else (0, nq_all)
    nq = qb - qa
    scale = dim ** -0.5 if scale is None else scale
    ka, kb = self_keys if self_keys is not None else (0, nk)
    grid, f, row_block, out_q, out_k = _self_pool(self_pool, nq, kb - ka)
    if self_out is not None and self_out.shape != (b, out_q, out_k):
        raise ValueError(f"self_out has shape {tuple(self_out.shape)}, expected {(b, out_q, out_k)}")
    w, wa, wb = None, 0, nk
    if key_weights is not None:
        # checked where the weights are (the host, in a probe) and copied without waiting:
        # a value read or a blocking copy on the device would stall the model's forward at
        # every captured layer
        w = key_weights.float()
        w = w.unsqueeze(0).expand(b, -1) if w.ndim == 1 else w
        if w.shape != (b, nk):
            raise ValueError(f"key weights {tuple(key_weights.shape)} do not match the {nk} keys "
                             "of the attention")
        used = (w != 0).any(0).nonzero().flatten()  # only the weighted keys' columns are read
        if used.numel():
            wa, wb = int(used[0]), int(used[-1]) + 1
        w = w[:, wa:wb].unsqueeze(-1).to(q.device, non_blocking=True)  # (B, weighted keys, 1)
    cross = torch.zeros(b, nq, dtype=torch.float32, device=q.device) if w is not None else None
    rows = _row_blocks(b, nq, nk, row_block, qh[:, 0, qa:qb].numel() * heads, max_chunk_elements)
    for h in range(heads):
        k_h = kh[:, h].float()
        for start in range(0, nq, rows):
            q_h = qh[:, h, qa + start:qa + min(nq, start + rows)].float()
            logits = torch.bmm(q_h, k_h.transpose(1, 2)).mul_(scale)
            logits = _masked(logits, mask, h, slice(qa + start, qa + start + q_h.shape[1]))
            if w is not None:
                cross[:, start:start + q_h.shape[1]] += torch.bmm(
                    logits.softmax(dim=-1)[..., wa:wb], w).squeeze(-1) / heads
            if self_out is not None:
                _add_rows(self_out, logits[..., ka:kb].softmax(dim=-1), start, grid, f,
                          self_weight / heads)
    return cross


def head_mean_attention(q: torch.Tensor, k: torch.Tensor, heads: int, *,
                        out: torch.Tensor | None = None, weight: float = 1.0,
                        scale: float | None = None, pool: tuple[tuple[int, int], int] | None = None,
                        max_chunk_elements: int | None = None) -> torch.Tensor:
    """Mean over heads of softmax(q_h k_h^T * scale), added into ``out``.

        A[b, i, j] += weight * (1/H) * sum_h softmax_j(q_h[b, i] . k_h[b, j] * scale)

    ``q``/``k`` are ``(B, N, heads*dim)`` or ``(B, heads, N, dim)``. Computed one head and
    one block of query rows at a time (:func:`attention_maps`); only ``out`` (float32) is
    kept. ``scale`` defaults to 1/sqrt(dim), as in the model.

    ``pool=((h, w), f)``: queries and keys are positions of an h x w grid (self-attention)
    and the result is kept on the ceil(h/f) x ceil(w/f) grid -- keys summed, queries
    averaged over f x f groups (partial groups at odd edges included), so rows still sum
    to 1. This keeps a DiT's 4096-token self-attention in a 1024 x 1024 matrix (16x less
    memory) without ever building the full one.
    """
    qh, kh = _heads_view(q, heads), _heads_view(k, heads)
    _check_qk(qh, kh, q, k)
    b, nq, nk = qh.shape[0], qh.shape[2], kh.shape[2]
    _, _, _, out_q, out_k = _self_pool(pool, nq, nk)
    if out is None:
        out = torch.zeros((b, out_q, out_k), dtype=torch.float32, device=q.device)
    attention_maps(q, k, heads, self_out=out, self_pool=pool, self_weight=weight, scale=scale,
                   max_chunk_elements=max_chunk_elements)
    return out


def _add_rows(out: torch.Tensor, probs: torch.Tensor, start: int, grid, f: int,
              factor: float) -> None:
    """Add a block of attention rows (starting at query ``start``) into ``out``,
    pooled by ``f`` on ``grid`` when f > 1."""
    if f > 1:
        probs = _mean_pool_queries(_sum_pool_keys(probs, grid, f), grid[1], f)
        start = (start // (f * grid[1])) * -(-grid[1] // f)
    out[:, start:start + probs.shape[1]].add_(probs, alpha=factor)


def normalized_weights(token_weights: torch.Tensor) -> torch.Tensor:
    """Token weights scaled to sum to 1 (per row); refused when they select no token."""
    w = token_weights.float()
    total = w.sum(dim=-1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("token_weights select no token: the prompt has no content tokens")
    return w / total


def joint_attention_maps(q_img: torch.Tensor, k: torch.Tensor, txt: int, heads: int,
                         token_weights: torch.Tensor, *, self_out: torch.Tensor | None = None,
                         self_pool: tuple[tuple[int, int], int] | None = None,
                         scale: float | None = None,
                         max_chunk_elements: int | None = None) -> torch.Tensor:
    """Image->text and image->image attention out of one *joint* attention over
    ``[text, image]`` keys (:func:`attention_maps` with the text first).

    ``q_img`` holds the image queries ``(B, heads, N_img, dim)`` (or token-major), ``k``
    all keys, text first; ``token_weights`` ``(txt,)`` or ``(B, txt)``. Image->text is
    sliced out of the joint softmax; image->image is renormalised over the image keys and
    added into ``self_out`` (pooled by ``self_pool``) when given. Returns CA ``(B, N_img)``.
    """
    qh, kh = _heads_view(q_img, heads), _heads_view(k, heads)
    _check_qk(qh, kh, q_img, k)
    b, nq, nk = qh.shape[0], qh.shape[2], kh.shape[2]
    if nk != txt + nq:
        raise ValueError(f"joint attention has {nk} keys, expected {txt} text + {nq} image")
    w = token_weights.float()
    w = w.unsqueeze(0).expand(b, -1) if w.ndim == 1 else w
    if w.shape != (b, txt):
        raise ValueError(f"token_weights {tuple(token_weights.shape)} do not match the {txt} "
                         "text tokens of the joint attention")
    w = torch.nn.functional.pad(normalized_weights(w), (0, nq))
    return attention_maps(q_img, k, heads, key_weights=w, self_keys=(txt, nk),
                          self_out=self_out, self_pool=self_pool, scale=scale,
                          max_chunk_elements=max_chunk_elements)


def fold_repeated_keys(probs: torch.Tensor, tokens: int) -> torch.Tensor:
    """Attention over a text sequence repeated whole, folded back onto one copy.

    When ComfyUI batches conditionings of different lengths it repeats the shorter one
    until the lengths agree (``CONDCrossAttn.concat``: 77 tokens become 154 beside a
    154-token prompt). Repeated keys split each token's attention evenly over its copies
    and leave the model's output unchanged, so summing the copies gives exactly the
    attention the conditioning gets when evaluated alone. ``probs`` is ``(B, N, M)``
    with ``M`` a multiple of ``tokens``.
    """
    b, n, m = probs.shape
    if m == tokens:
        return probs
    if m % tokens:
        raise ValueError(f"{m} text keys are not a whole repetition of the prompt's "
                         f"{tokens} tokens")
    return probs.view(b, n, m // tokens, tokens).sum(dim=2)


def repeated_key_weights(token_weights: torch.Tensor, keys: int) -> torch.Tensor:
    """The weights of a prompt's tokens over ``keys`` text keys that hold it repeated
    whole (ComfyUI's batching of conditionings of different lengths,
    ``CONDCrossAttn.concat``: 77 tokens become 154 beside a 154-token prompt).

    Repeated keys split each token's attention evenly over its copies and leave the
    model's output unchanged, so giving every copy the token's whole weight gives exactly
    the map of the conditioning evaluated alone (:func:`fold_repeated_keys` says the same of the
    probabilities)."""
    tokens = token_weights.shape[-1]
    if keys % tokens:
        raise ValueError(f"{keys} text keys are not a whole repetition of the prompt's "
                         f"{tokens} tokens")
    return token_weights.float().repeat(*([1] * (token_weights.ndim - 1)), keys // tokens)


def cross_attention_map(probs: torch.Tensor, token_weights: torch.Tensor) -> torch.Tensor:
    """One spatial map from image->text attention, averaged over the chosen tokens.

        CA[b, i] = sum_m probs[b, i, m] * w[m] / sum_m w[m]

    ``probs`` is ``(B, N, M)`` (already averaged over heads); ``token_weights`` is ``(M,)``
    or ``(B, M)``, 1 on the prompt's content tokens and 0 on start/end/padding tokens,
    which soak up most of the attention and carry no spatial meaning.
    """
    # checked and normalised where the weights are (the host, in a probe), then copied
    # without waiting: a value read or a blocking copy on the device would stall the
    # model's forward at every captured layer
    w = token_weights.float()
    if w.ndim == 1:
        w = w.unsqueeze(0).expand(probs.shape[0], -1)
    if w.shape != (probs.shape[0], probs.shape[2]):
        raise ValueError(f"token_weights {tuple(token_weights.shape)} do not match the "
                         f"{probs.shape[2]} text tokens of the attention {tuple(probs.shape)}")
    total = w.sum(dim=1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("token_weights select no token: the prompt has no content tokens")
    w = (w / total).to(probs.device, non_blocking=True)
    return torch.einsum("bnm,bm->bn", probs.float(), w)


def grid_for_tokens(tokens: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) token grid a latent of ``height x width`` is reduced to at ``tokens``.

    Down-sampling rounds up (stride-2 convolutions with padding 1), so a 60-wide latent
    becomes 30, 15, 8. Returns the grid whose area is exactly ``tokens``.
    """
    h, w = height, width
    while h * w > tokens:
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    if h * w != tokens:
        raise ValueError(f"{tokens} attention positions match no down-sampled grid of a "
                         f"{height}x{width} latent")
    return h, w


def resize_map(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(B, h, w)`` maps to ``size``: area-average down, bilinear up."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    shrinking = size[0] <= maps.shape[-2] and size[1] <= maps.shape[-1]
    if shrinking:  # average the covered positions (exact mean pooling for integer factors)
        return F.interpolate(maps.unsqueeze(1).float(), size=size, mode="area").squeeze(1)
    return F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear",
                         align_corners=False).squeeze(1)


class AttentionAccumulator:
    """Running means of cross-attention maps (per conditioning) and self-attention.

    ``grid`` is the (h, w) token grid the maps are kept at. A layer at an integer multiple
    f of it (ceil-divided: a 19x29 DiT token grid pools by 2 onto 10x15) is pooled by f
    on the fly; cross-attention from a layer at any other resolution is resized to it.
    """

    def __init__(self, grid: tuple[int, int]):
        self.grid = tuple(grid)
        self._cross: dict[object, torch.Tensor] = {}
        self._cross_n: dict[object, int] = {}
        self._self: torch.Tensor | None = None
        self._self_n = 0

    @property
    def positions(self) -> int:
        return self.grid[0] * self.grid[1]

    def pool_factor(self, grid: tuple[int, int]) -> int | None:
        """The integer f with ceil(grid / f) == the kept grid (the smallest), or None."""
        f = -(-grid[0] // self.grid[0])
        return f if f >= 1 and pooled_size(grid, f) == self.grid else None

    def _to_grid(self, ca: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        f = self.pool_factor(tuple(grid))
        return pool_map(ca, f) if f is not None else resize_map(ca, self.grid)

    def _fold_in(self, key, ca: torch.Tensor) -> None:
        if key in self._cross:
            self._cross[key] += ca
            self._cross_n[key] += 1
        else:
            self._cross[key] = ca
            self._cross_n[key] = 1

    def add_call(self, key, q: torch.Tensor, k: torch.Tensor, heads: int, *,
                 grid: tuple[int, int], query_rows: tuple[int, int] | None = None,
                 key_weights: torch.Tensor | None = None,
                 self_keys: tuple[int, int] | None = None, mask: torch.Tensor | None = None,
                 with_self: bool = False) -> None:
        """Fold one attention call into the running means (:func:`attention_maps`).

        ``query_rows`` / ``self_keys``: where the image's ``grid`` positions sit among the
        call's queries / keys (default: all of them). ``key_weights`` ``(Nk,)`` or
        ``(B, Nk)``: the share of each key in conditioning ``key``'s image->text map (0 on
        every key that is not one of its content tokens; :func:`normalized_weights` of its
        tokens, :func:`repeated_key_weights` when the keys repeat them) -- the map is folded
        in when given. ``with_self``: the image->image attention is folded in too."""
        self_out = pool = None
        if with_self:
            pool = self._self_target(q, grid)
            self_out = self._self
        ca = attention_maps(q, k, heads, query_rows=query_rows, key_weights=key_weights,
                            self_keys=self_keys, self_out=self_out, self_pool=pool, mask=mask)
        if ca is not None:
            self._fold_in(key, self._to_grid(ca.view(-1, *grid), grid))
        if with_self:
            self._self_n += 1

    def add_cross(self, key, q: torch.Tensor, k: torch.Tensor, heads: int,
                  token_weights: torch.Tensor, grid: tuple[int, int]) -> None:
        """Fold one layer's image->text attention for conditioning ``key`` into its mean.

        ``k`` may hold the prompt's tokens repeated whole (ComfyUI's batching of
        conditionings of different lengths): see :func:`repeated_key_weights`.
        """
        self.add_call(key, q, k, heads, grid=grid,
                      key_weights=repeated_key_weights(normalized_weights(token_weights),
                                                       k.shape[-2] if k.ndim == 4 else k.shape[1]))

    def _self_target(self, q: torch.Tensor, grid: tuple[int, int]):
        """The running self-attention sum and the pooling for a layer at ``grid``."""
        grid = tuple(grid)
        f = self.pool_factor(grid)
        if f is None:
            raise ValueError(f"self-attention at grid {grid} cannot join maps kept "
                             f"at {self.grid}")
        if self._self is None:
            self._self = torch.zeros(q.shape[0], self.positions, self.positions,
                                     dtype=torch.float32, device=q.device)
        elif self._self.shape[0] != q.shape[0]:
            raise ValueError("self-attention batch changed between layers")
        return (grid, f) if f > 1 else None

    def add_self(self, q: torch.Tensor, k: torch.Tensor, heads: int,
                 grid: tuple[int, int]) -> None:
        """Fold one layer's image->image attention into the running mean, in place."""
        self.add_call(None, q, k, heads, grid=grid, with_self=True)

    def add_joint(self, key, q_img: torch.Tensor, k: torch.Tensor, txt: int, *, heads: int,
                  token_weights: torch.Tensor, grid: tuple[int, int],
                  with_self: bool) -> None:
        """Fold one joint-attention layer over ``[text, image]`` keys: image->text for
        ``key`` sliced from the joint softmax, and (``with_self``) image->image
        renormalised over the image keys. ``q_img``: the image queries only."""
        nk = k.shape[-2] if k.ndim == 4 else k.shape[1]
        if token_weights.shape[-1] != txt:
            raise ValueError(f"token_weights {tuple(token_weights.shape)} do not match the "
                             f"{txt} text tokens of the joint attention")
        w = torch.nn.functional.pad(normalized_weights(token_weights), (0, nk - txt))
        self.add_call(key, q_img, k, heads, grid=grid, key_weights=w, self_keys=(txt, nk),
                      with_self=with_self)

    def cross_keys(self) -> list:
        """The conditionings whose cross-attention was captured."""
        return list(self._cross)

    def cross_map(self, key) -> torch.Tensor:
        """Mean cross-attention map for ``key``: ``(B, h, w)``."""
        if key not in self._cross:
            raise KeyError(f"no cross-attention was captured for {key!r}")
        return self._cross[key] / self._cross_n[key]

    def self_matrix(self) -> torch.Tensor:
        """Mean self-attention: ``(B, N, N)``, each row a distribution over positions."""
        if self._self is None:
            raise KeyError("no self-attention was captured")
        return self._self / self._self_n

    @property
    def layers_seen(self) -> tuple[int, int]:
        """(cross-attention layer calls, self-attention layer calls) folded in so far."""
        return max(self._cross_n.values(), default=0), self._self_n
