"""The toy world: procedurally generated latent scenes with planted defects (pure torch).

A scene is a ``(4, S, S)`` latent in the *model's* space (what the U-Net sees; divide by
the SD1.5 latent scale factor for a ComfyUI LATENT): a softly varying background and
one or two soft coloured squares or circles, each colour a fixed 4-channel vector.
Its caption names the objects: "a red square and a blue circle".

Defects are planted on a scene and come with their ground-truth support (a boolean
``(S, S)`` mask):

- ``noise``  -- the trained defect: a d x d patch of Gaussian noise (d = 5 at S = 16).
- ``blotch`` -- never seen in training: a soft blob of a colour outside the palette.
- ``smear``  -- never seen in training: the box's left column dragged across the box
  (paint streaks), placed on an object's edge so it always changes the picture.

Training images carry the ``noise`` defect with probability 1/2; captions say
"A high-quality image of {p}" for clean and "A low-quality image of {p}" for defective
images, or the bare caption, or nothing (for classifier-free guidance).

Everything is a function of an explicit ``torch.Generator``: same seed, same scenes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

CHANNELS = 4
COLOURS = {  # model-space latent vectors; distinct directions, norm ~1.6
    "red": (1.4, -0.6, 0.4, -0.4),
    "green": (-0.6, 1.4, -0.4, 0.4),
    "blue": (-0.4, -0.4, 1.4, 0.6),
    "yellow": (0.6, 0.6, -0.6, 1.3),
}
BLOTCH_COLOUR = (-1.0, -1.0, -1.0, -1.0)  # outside the palette: never in training
BACKGROUND = (0.0, 0.0, 0.0, 0.0)
SHAPES = ("square", "circle")
DEFECTS = ("noise", "blotch", "smear")
TRAINED_DEFECTS = ("noise",)

POSITIVE_TEMPLATE = "A high-quality image of {p}"
NEGATIVE_TEMPLATE = "A low-quality image of {p}"


@dataclass
class Obj:
    colour: str
    shape: str
    cx: float
    cy: float
    radius: float  # circle radius / half side of the square, in latent pixels


@dataclass
class Scene:
    latent: torch.Tensor          # (4, S, S), model space
    objects: list[Obj]
    caption: str
    support: torch.Tensor         # (S, S) float: union of the objects' soft masks
    defect: str | None = None
    defect_mask: torch.Tensor | None = None  # (S, S) bool, where the defect changed the scene
    extra: dict = field(default_factory=dict)


def defect_side(size: int) -> int:
    """Side of the defect box: 5 at a 16x16 latent, 10 at 32x32 (~10 % of the area)."""
    return max(2, round(5 * size / 16))


def caption_for(objects: list[Obj]) -> str:
    return " and ".join(f"a {o.colour} {o.shape}" for o in objects)


def all_captions() -> list[str]:
    """Every caption the world can produce (one or two objects of distinct colours)."""
    singles = [f"a {c} {s}" for c in COLOURS for s in SHAPES]
    pairs = [f"{a} and {b}" for a in singles for b in singles if a.split()[1] != b.split()[1]]
    return singles + pairs


def _grid(size: int):
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32) + 0.5,
                          torch.arange(size, dtype=torch.float32) + 0.5, indexing="ij")
    return y, x


def shape_mask(obj: Obj, size: int) -> torch.Tensor:
    """Soft (S, S) mask of one object: 1 inside, 0 outside, a ~1-pixel-wide edge at S=16."""
    y, x = _grid(size)
    dy, dx = y - obj.cy, x - obj.cx
    dist = torch.sqrt(dx * dx + dy * dy) if obj.shape == "circle" else torch.maximum(dx.abs(), dy.abs())
    softness = size / 32.0
    return torch.sigmoid((obj.radius - dist) / softness)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _choice(g: torch.Generator, options):
    return options[int(torch.randint(len(options), (), generator=g))]


def _smooth_field(g: torch.Generator, size: int, amplitude: float) -> torch.Tensor:
    """Low-frequency background variation: 4x4 noise upsampled bicubically."""
    coarse = torch.randn(1, CHANNELS, 4, 4, generator=g) * amplitude
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic",
                                           align_corners=False)[0]


def random_scene(g: torch.Generator, size: int = 16) -> Scene:
    """One or two objects of distinct colours on a softly varying background."""
    n = 1 if float(torch.rand((), generator=g)) < 0.5 else 2
    colours = list(COLOURS)
    objects = []
    for _ in range(n):
        colour = _choice(g, colours)
        colours.remove(colour)
        shape = _choice(g, SHAPES)
        radius = _uniform(g, 0.14, 0.24) * size
        objects.append(Obj(colour, shape, _uniform(g, 0.25, 0.75) * size,
                           _uniform(g, 0.25, 0.75) * size, radius))
    latent = torch.tensor(BACKGROUND).view(CHANNELS, 1, 1) + _smooth_field(g, size, 0.15)
    support = torch.zeros(size, size)
    for obj in objects:
        m = shape_mask(obj, size)
        latent = latent * (1 - m) + torch.tensor(COLOURS[obj.colour]).view(CHANNELS, 1, 1) * m
        support = torch.maximum(support, m)
    return Scene(latent, objects, caption_for(objects), support)


def _box(g: torch.Generator, scene: Scene, side: int, where: str) -> tuple[int, int]:
    """Top-left corner of a side x side box inside the image.

    ``where``: "anywhere" (uniform), "object" (centre inside an object) or "edge"
    (centre on an object's boundary, where the soft mask is between 0.2 and 0.8).
    """
    size = scene.latent.shape[-1]
    if where == "anywhere":
        cy, cx = (int(torch.randint(size, (), generator=g)) for _ in range(2))
    else:
        m = scene.support
        allowed = (m > 0.5) if where == "object" else ((m > 0.2) & (m < 0.8))
        if not allowed.any():
            allowed = m >= m.max() * 0.5
        idx = torch.nonzero(allowed.flatten()).flatten()
        pick = int(idx[int(torch.randint(len(idx), (), generator=g))])
        cy, cx = divmod(pick, size)
    top = min(max(0, cy - side // 2), size - side)
    left = min(max(0, cx - side // 2), size - side)
    return top, left


def plant_defect(scene: Scene, kind: str, g: torch.Generator, where: str | None = None) -> Scene:
    """A copy of ``scene`` with a defect of ``kind`` and its ground-truth support.

    ``where`` defaults to "object" for noise and blotch (defects that matter sit on the
    subject) and "edge" for smear (a smear on a flat region changes nothing).
    """
    if kind not in DEFECTS:
        raise ValueError(f"unknown defect {kind!r}; expected one of {DEFECTS}")
    size = scene.latent.shape[-1]
    side = defect_side(size)
    where = where or ("edge" if kind == "smear" else "object")
    top, left = _box(g, scene, side, where)
    rows, cols = slice(top, top + side), slice(left, left + side)
    latent = scene.latent.clone()
    mask = torch.zeros(size, size, dtype=torch.bool)
    if kind == "noise":
        latent[:, rows, cols] = 0.4 * latent[:, rows, cols] + torch.randn(
            CHANNELS, side, side, generator=g)
        mask[rows, cols] = True
    elif kind == "blotch":
        y, x = _grid(size)
        cy, cx = top + side / 2, left + side / 2
        ry, rx = side * _uniform(g, 0.45, 0.6), side * _uniform(g, 0.45, 0.6)
        d = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
        blob = torch.sigmoid((1 - d) * 4.0)
        colour = torch.tensor(BLOTCH_COLOUR).view(CHANNELS, 1, 1)
        latent = latent * (1 - blob) + colour * blob
        mask = blob > 0.5
    else:  # smear: drag the box's left column across it
        col = latent[:, rows, left:left + 1]
        latent[:, rows, cols] = 0.15 * latent[:, rows, cols] + 0.85 * col.expand(-1, -1, side)
        mask[rows, cols] = True
    return Scene(latent, scene.objects, scene.caption, scene.support, kind, mask,
                 {"box": (top, left, side)})


def training_batch(g: torch.Generator, batch: int, size: int, defect_p: float = 0.5):
    """(latents (B, 4, S, S), captions): the training distribution.

    Half the images carry the trained (noise) defect, planted anywhere. Captions: 50 %
    quality-tagged (high-quality for clean, low-quality for defective), 35 % the bare
    caption, 15 % empty (the unconditional case of classifier-free guidance).
    """
    latents, captions = [], []
    for _ in range(batch):
        scene = random_scene(g, size)
        defective = float(torch.rand((), generator=g)) < defect_p
        if defective:
            scene = plant_defect(scene, "noise", g, where="anywhere")
        u = float(torch.rand((), generator=g))
        if u < 0.5:
            template = NEGATIVE_TEMPLATE if defective else POSITIVE_TEMPLATE
            captions.append(template.replace("{p}", scene.caption))
        elif u < 0.85:
            captions.append(scene.caption)
        else:
            captions.append("")
        latents.append(scene.latent)
    return torch.stack(latents), captions


def training_captions() -> list[str]:
    """Every caption training can use: bare, both quality templates, and the empty one."""
    out = [""]
    for c in all_captions():
        out += [c, POSITIVE_TEMPLATE.replace("{p}", c), NEGATIVE_TEMPLATE.replace("{p}", c)]
    return out


def benchmark_scene(seed: int, index: int, size: int) -> Scene:
    """The clean scene of benchmark case ``index`` (before its defect is planted)."""
    return random_scene(torch.Generator().manual_seed(seed * 100_003 + index), size)


def benchmark_cases(seed: int, count: int, size: int, kind: str) -> list[Scene]:
    """``count`` clean scenes with a ``kind`` defect each; the same for every model.

    The scene depends on (seed, case index) only, the defect on (seed, kind, index): all
    defect types share the same scenes.
    """
    cases = []
    for i in range(count):
        scene = benchmark_scene(seed, i, size)
        g = torch.Generator().manual_seed(seed * 100_003 + i + 7919 * (1 + DEFECTS.index(kind)))
        cases.append(plant_defect(scene, kind, g))
    return cases


def high_frequency_energy(latent: torch.Tensor) -> torch.Tensor:
    """(..., S, S) per-pixel energy of a 3x3 Laplacian summed over channels.

    The plain high-pass baseline of the localization benchmark and the defect term of
    the toy verifier.
    """
    x = latent.reshape(-1, CHANNELS, *latent.shape[-2:])
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    k = k.view(1, 1, 3, 3).repeat(CHANNELS, 1, 1, 1)
    lap = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
                                     k, groups=CHANNELS)
    return lap.pow(2).sum(1).reshape(*latent.shape[:-3], *latent.shape[-2:])


def colour_distance(latent: torch.Tensor, colour: str) -> torch.Tensor:
    """(S, S) Euclidean distance of every pixel to a palette colour."""
    ref = torch.tensor(COLOURS[colour]).view(CHANNELS, 1, 1)
    return (latent - ref).pow(2).sum(0).sqrt()


NAMED_RGB = {"red": (0.9, 0.15, 0.1), "green": (0.1, 0.75, 0.2), "blue": (0.15, 0.3, 0.95),
             "yellow": (0.95, 0.85, 0.1)}


def to_rgb(latent: torch.Tensor) -> torch.Tensor:
    """(..., 4, S, S) model-space latents -> (..., S, S, 3) RGB in [0, 1] for pictures.

    The linear map sending each palette colour to its name's RGB, the background to
    grey and the blotch colour to magenta (least squares); anything else (noise) shows
    as what that map makes of it.
    """
    refs = [COLOURS[c] for c in NAMED_RGB] + [BACKGROUND, BLOTCH_COLOUR]
    rgbs = list(NAMED_RGB.values()) + [(0.5, 0.5, 0.5), (0.85, 0.1, 0.85)]
    a = torch.cat([torch.tensor(refs), torch.ones(len(refs), 1)], dim=1)
    w = torch.linalg.lstsq(a, torch.tensor(rgbs)).solution  # (5, 3)
    x = latent.movedim(-3, -1)
    return (x @ w[:4] + w[4]).clamp(0, 1)


# --- the toy verifier -------------------------------------------------------------------

DEFECT_ENERGY = 8.0   # Laplacian energy above any clean scene's (max ~5) and below 90 % of
                      # a noise defect's pixels (~21)
COLOUR_RADIUS = 0.6   # a pixel "is" a palette colour within this distance (colours are >= 1.6 apart)
DEFECT_WEIGHT = 5.0   # a defect on 10 % of the image costs 0.5, like one of two objects missing


def parse_caption(caption: str) -> list[tuple[str, str]]:
    """[(colour, shape), ...] named by a toy caption (quality templates are ignored)."""
    words = caption.replace(",", " ").split()
    return [(words[i], words[i + 1]) for i in range(len(words) - 1)
            if words[i] in COLOURS and words[i + 1] in SHAPES]


def verify(latent: torch.Tensor, caption: str) -> dict:
    """The toy world's verifier, computed from a model-space latent (4, S, S).

    - ``defect``: share of the image with defect-like texture (Laplacian energy above
      DEFECT_ENERGY, which no clean scene reaches);
    - ``prompt``: per named object, 1 if its colour covers at least half the smallest
      object's area and its shape is right (fill of its bounding box: square > 0.89,
      circle ~ pi/4), 0.5 if present with the wrong shape; averaged; minus 0.5 per
      palette colour present but not named;
    - ``score = prompt - DEFECT_WEIGHT * defect`` (higher is better; a perfect sample
      of the caption scores 1).
    """
    size = latent.shape[-1]
    defect = float((high_frequency_energy(latent.unsqueeze(0))[0] > DEFECT_ENERGY).float().mean())
    min_area = 0.5 * 3.14159 * (0.14 * size) ** 2
    named = parse_caption(caption)
    present = {}
    for colour in COLOURS:
        region = colour_distance(latent, colour) < COLOUR_RADIUS
        area = int(region.sum())
        if area >= min_area:
            ys, xs = torch.nonzero(region, as_tuple=True)
            box = (int(ys.max() - ys.min()) + 1) * (int(xs.max() - xs.min()) + 1)
            present[colour] = "square" if area / box > 0.89 else "circle"
    hits = [1.0 if present.get(c) == s else 0.5 if c in present else 0.0 for c, s in named]
    extra = sum(1 for c in present if c not in {c for c, _ in named})
    prompt = (sum(hits) / len(hits) if hits else 0.0) - 0.5 * extra
    return {"score": prompt - DEFECT_WEIGHT * defect, "prompt": prompt, "defect": defect}
