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


def _sum_pool_keys(p: torch.Tensor, grid: tuple[int, int], f: int) -> torch.Tensor:
    """Sum attention over f x f groups of key positions: rows stay distributions."""
    b, r, _ = p.shape
    h, w = grid
    pooled = F.avg_pool2d(p.reshape(b * r, 1, h, w), f) * (f * f)
    return pooled.view(b, r, -1)


def _mean_pool_queries(p: torch.Tensor, w: int, f: int) -> torch.Tensor:
    """Average attention rows over f x f groups of query positions (whole grid rows)."""
    b, r, k = p.shape
    rows = r // w
    grid = p.view(b, rows, w, k).permute(0, 3, 1, 2)
    return F.avg_pool2d(grid, f).permute(0, 2, 3, 1).reshape(b, -1, k)


def head_mean_attention(q: torch.Tensor, k: torch.Tensor, heads: int, *,
                        out: torch.Tensor | None = None, weight: float = 1.0,
                        scale: float | None = None, pool: tuple[tuple[int, int], int] | None = None,
                        max_chunk_elements: int | None = None) -> torch.Tensor:
    """Mean over heads of softmax(q_h k_h^T * scale), added into ``out``.

        A[b, i, j] += weight * (1/H) * sum_h softmax_j(q_h[b, i] . k_h[b, j] * scale)

    ``q``/``k`` are ``(B, N, heads*dim)`` or ``(B, heads, N, dim)`` (both layouts the host
    uses). Computed one head and one block of query rows at a time, so the temporary
    memory is bounded by ``max_chunk_elements`` whatever the head count; only ``out``
    (float32) is kept. ``scale`` defaults to 1/sqrt(dim), as in the model.

    The default block is 1/16 of ``q``'s size, at most DEFAULT_CHUNK_ELEMENTS: the
    temporaries then stay a small fraction of what the attention kernel itself holds
    (its inputs and output), for a small U-Net level as for FLUX's 4096 tokens.

    ``pool=((h, w), f)``: queries and keys are positions of an h x w grid (self-attention)
    and the result is kept on the (h/f) x (w/f) grid -- keys summed, queries averaged over
    f x f groups, so rows still sum to 1. This keeps a DiT's 4096-token self-attention in
    a 1024 x 1024 matrix (16x less memory) without ever building the full one.
    """
    qh, kh = _heads_view(q, heads), _heads_view(k, heads)
    if qh.shape[0] != kh.shape[0] or qh.shape[1] != kh.shape[1] or qh.shape[3] != kh.shape[3]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must be (B, N, heads*dim) "
                         "with the same batch and width")
    b, _, nq, dim = qh.shape
    nk = kh.shape[2]
    if scale is None:
        scale = dim ** -0.5
    f, row_block = 1, 1
    if pool is not None:
        (gh, gw), f = pool
        if gh % f or gw % f or nq != gh * gw or nk != gh * gw:
            raise ValueError(f"cannot pool a {gh}x{gw} grid by {f} for attention {nq}x{nk}")
        row_block = f * gw  # chunks hold whole groups of f grid rows
    shape = (b, nq // (f * f), nk // (f * f))
    if out is None:
        out = torch.zeros(shape, dtype=torch.float32, device=q.device)
    elif out.shape != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    if max_chunk_elements is None:
        max_chunk_elements = min(DEFAULT_CHUNK_ELEMENTS, max(1 << 14, q.numel() // 16))
    rows = max(1, min(nq, max_chunk_elements // max(1, b * nk)))
    rows = max(row_block, rows - rows % row_block)
    factor = weight / heads
    for h in range(heads):
        k_h = kh[:, h].float()
        for start in range(0, nq, rows):
            q_h = qh[:, h, start:start + rows].float()
            probs = torch.bmm(q_h, k_h.transpose(1, 2)).mul_(scale).softmax(dim=-1)
            if f > 1:
                probs = _mean_pool_queries(_sum_pool_keys(probs, (gh, gw), f), gw, f)
                lo = start // (f * f)
                out[:, lo:lo + probs.shape[1]].add_(probs, alpha=factor)
            else:
                out[:, start:start + rows].add_(probs, alpha=factor)
    return out


def cross_attention_map(probs: torch.Tensor, token_weights: torch.Tensor) -> torch.Tensor:
    """One spatial map from image->text attention, averaged over the chosen tokens.

        CA[b, i] = sum_m probs[b, i, m] * w[m] / sum_m w[m]

    ``probs`` is ``(B, N, M)`` (already averaged over heads); ``token_weights`` is ``(M,)``
    or ``(B, M)``, 1 on the prompt's content tokens and 0 on start/end/padding tokens,
    which soak up most of the attention and carry no spatial meaning.
    """
    w = token_weights.to(probs.device, torch.float32)
    if w.ndim == 1:
        w = w.unsqueeze(0).expand(probs.shape[0], -1)
    if w.shape != (probs.shape[0], probs.shape[2]):
        raise ValueError(f"token_weights {tuple(token_weights.shape)} do not match the "
                         f"{probs.shape[2]} text tokens of the attention {tuple(probs.shape)}")
    total = w.sum(dim=1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("token_weights select no token: the prompt has no content tokens")
    return torch.einsum("bnm,bm->bn", probs.float(), w / total)


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

    ``grid`` is the (h, w) token grid the maps are kept at. Cross-attention from a layer
    at another resolution is resized to it; self-attention must come from layers at
    ``grid`` or an integer multiple of it (pooled on the fly, see head_mean_attention).
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

    def add_cross(self, key, q: torch.Tensor, k: torch.Tensor, heads: int,
                  token_weights: torch.Tensor, grid: tuple[int, int]) -> None:
        """Fold one layer's image->text attention for conditioning ``key`` into its mean."""
        probs = head_mean_attention(q, k, heads)
        ca = cross_attention_map(probs, token_weights).view(-1, *grid)
        ca = resize_map(ca, self.grid)
        if key in self._cross:
            self._cross[key] += ca
            self._cross_n[key] += 1
        else:
            self._cross[key] = ca
            self._cross_n[key] = 1

    def add_self(self, q: torch.Tensor, k: torch.Tensor, heads: int,
                 grid: tuple[int, int]) -> None:
        """Fold one layer's image->image attention into the running mean, in place.

        A layer at an integer multiple f of the kept grid is pooled by f on the fly.
        """
        grid = tuple(grid)
        f = grid[0] // self.grid[0]
        if f < 1 or grid != (self.grid[0] * f, self.grid[1] * f):
            raise ValueError(f"self-attention at grid {grid} cannot join maps kept "
                             f"at {self.grid}")
        if self._self is None:
            self._self = torch.zeros(q.shape[0], self.positions, self.positions,
                                     dtype=torch.float32, device=q.device)
        elif self._self.shape[0] != q.shape[0]:
            raise ValueError("self-attention batch changed between layers")
        head_mean_attention(q, k, heads, out=self._self, pool=(grid, f) if f > 1 else None)
        self._self_n += 1

    def keys(self):
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
