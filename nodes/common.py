"""Glue shared by the LoTTS nodes: input checks, per-candidate noise, sampling with one
progress bar and latent previews, and the tooltips every sampling node repeats.

Everything that is method math lives in ``lotts/``; this module only speaks ComfyUI.
"""

from __future__ import annotations

import math

import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview

CATEGORY = "LoTTS"

# Inputs that several nodes share, with the same tooltip everywhere.
MODEL_INPUT = ("MODEL", {"tooltip": "The diffusion model, as loaded by a checkpoint loader. "
                                    "LoTTS never patches it in place (it works on a clone)."})
POSITIVE_INPUT = ("CONDITIONING", {"tooltip": "The conditioning the candidates were sampled "
                                              "with (what you want in the image)."})
NEGATIVE_INPUT = ("CONDITIONING", {"tooltip": "The negative conditioning used with the "
                                              "positive one."})
SEED_INPUT = ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff,
                      "control_after_generate": True,
                      "tooltip": "Base seed. Item i of the batch uses seed + i."})
STEPS_INPUT = ("INT", {"default": 20, "min": 1, "max": 10000,
                       "tooltip": "Steps of the full schedule. Use the same value as for the "
                                  "candidates: start/end steps index into this schedule."})
CFG_INPUT = ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                       "tooltip": "Classifier-free guidance scale, as in KSampler."})


def sampler_input():
    return (comfy.samplers.KSampler.SAMPLERS, {"tooltip": "Sampler, as in KSampler."})


def scheduler_input():
    return (comfy.samplers.KSampler.SCHEDULERS, {"tooltip": "Scheduler, as in KSampler."})


# Samplers whose result for one image does not depend on the rest of the batch: no noise
# drawn during sampling (ancestral/SDE samplers draw it for the whole batch from one seed)
# and no batch-wide adaptive step size. Candidates of these are sampled as one batch;
# others one by one, so that candidate i always equals a KSampler run with seed + i.
BATCH_SAFE_SAMPLERS = frozenset({
    "euler", "euler_cfg_pp", "heun", "heunpp2", "dpm_2", "lms", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "ipndm", "ipndm_v", "deis", "ddim", "uni_pc", "uni_pc_bh2", "res_multistep",
    "res_multistep_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
})


def check_latent(model, latent: dict, input_name: str) -> torch.Tensor:
    """Return ``latent["samples"]`` after checking it fits ``model``; name the input if not."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise ValueError(f"{input_name} is not a LATENT (a dict with 'samples').")
    samples = latent["samples"]
    if samples.ndim != 4:
        raise ValueError(f"{input_name} has shape {tuple(samples.shape)}; LoTTS works on image "
                         "latents [batch, channels, height, width] (not video latents).")
    samples = comfy.sample.fix_empty_latent_channels(model, samples)
    expected = model.get_model_object("latent_format").latent_channels
    if samples.shape[1] != expected:
        raise ValueError(f"{input_name} has {samples.shape[1]} channels but this model works on "
                         f"{expected}-channel latents: make it with this model's VAE or its "
                         "empty-latent node.")
    if samples.shape[0] == 0:
        raise ValueError(f"{input_name} is an empty batch.")
    return samples


def _needs_pooled(model) -> bool:
    """Whether the model reads the pooled text embedding (SDXL's ADM vector, FLUX's and
    SD3's vec input); ComfyUI fails deep inside with a bare KeyError when it is absent."""
    import comfy.model_base as mb
    inner = model.model
    dit_classes = tuple(c for c in (getattr(mb, "Flux", None), getattr(mb, "SD3", None)) if c)
    return getattr(inner, "adm_channels", 0) > 0 or isinstance(inner, dit_classes)


def check_conditioning(model, cond, input_name: str) -> None:
    """A CONDITIONING is a list of [tensor, dict]; name the input when it is not usable."""
    if not isinstance(cond, list) or not cond or not all(
            isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[1], dict) for c in cond):
        raise ValueError(f"{input_name} is not a CONDITIONING (a list of [tensor, options]); "
                         "connect a CLIP Text Encode output.")
    if _needs_pooled(model) and any("pooled_output" not in c[1] for c in cond):
        raise ValueError(f"{input_name} has no 'pooled_output': this model "
                         f"({type(model.model).__name__}) needs the pooled text embedding. "
                         "Encode the prompt with CLIP Text Encode (or your model's text-encode "
                         "node) instead of building the conditioning by hand.")


def check_steps(steps: int, start_step: int, end_step: int | None = None) -> None:
    """The step window, named the way the node's inputs are named."""
    from ..lotts.schedule import refine_steps
    refine_steps(steps, start_step, end_step)


def seeded_noise(samples: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """Noise for each batch item from its own seed, exactly as KSampler draws it for a
    batch-1 latent (ComfyUI draws a whole batch from one generator, so item i of a
    batched run would not match a single run with seed + i)."""
    one = samples[:1]
    return torch.cat([comfy.sample.prepare_noise(one, int(s)) for s in seeds], dim=0)


def pixel_size(samples: torch.Tensor) -> tuple[int, int]:
    """Pixel height and width of a latent (ComfyUI's VAEs down-sample by 8)."""
    return samples.shape[-2] * 8, samples.shape[-1] * 8


def prepare_mask(mask: torch.Tensor, batch: int, samples: torch.Tensor,
                 input_name: str = "mask") -> torch.Tensor:
    """Check a MASK against a latent batch and bring it to the latent's pixel size.

    Batch: 1 (broadcast) or ``batch``. Size: the pixel size of the latent (height*8,
    width*8), or any size of the same aspect ratio (resized, nearest); a mask whose sides
    are not multiples of 8 cannot be aligned with the latent grid and is refused.
    """
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(f"{input_name} has shape {tuple(mask.shape)}; expected a MASK [batch, height, width].")
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"{input_name} has {mask.shape[0]} masks for {batch} candidates: give one "
                         "mask per candidate (as the localizer makes) or a single mask for all.")
    target = pixel_size(samples)
    h, w = mask.shape[-2:]
    if (h, w) != target:
        if h % 8 or w % 8:
            raise ValueError(f"{input_name} is {w}x{h} pixels, not a multiple of 8: it cannot be "
                             f"aligned with the {target[1]}x{target[0]} image. Resize it to "
                             f"{target[1]}x{target[0]}.")
        if not math.isclose(h / w, target[0] / target[1], rel_tol=0.01):
            raise ValueError(f"{input_name} is {w}x{h} but the image is {target[1]}x{target[0]}: "
                             "the aspect ratios differ, so the mask would land on the wrong "
                             "region. Make the mask from these candidates.")
        mask = torch.nn.functional.interpolate(mask.unsqueeze(1).float(), size=target,
                                               mode="nearest-exact").squeeze(1)
    return mask.float().clamp(0.0, 1.0).expand(batch, -1, -1).contiguous()


class Progress:
    """One progress bar (with latent previews) across several sampling passes.

    ComfyUI's own callback makes a bar per sampler call; a node that samples N candidates
    one after the other should show one bar of N * steps. In the server each update
    also checks Cancel.
    """

    def __init__(self, model, total: int):
        self.total = max(1, int(total))
        self.done = 0
        self.pbar = comfy.utils.ProgressBar(self.total)
        self.previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)

    def callback(self):
        start = self.done

        def cb(step, x0, x, total_steps):
            preview = None
            if self.previewer is not None:
                preview = self.previewer.decode_latent_to_preview_image("JPEG", x0)
            self.pbar.update_absolute(min(self.total, start + step + 1), self.total, preview)
        return cb

    def advance(self, n: int):
        self.done += n
        self.pbar.update_absolute(min(self.total, self.done), self.total)


def sample(model, samples, seeds, steps, cfg, sampler_name, scheduler, positive, negative,
           progress: Progress, *, start_step=None, last_step=None, force_full_denoise=True,
           noise_mask=None, add_noise=True, one_by_one=False) -> torch.Tensor:
    """KSampler-equivalent sampling of a batch where item i has its own seed ``seeds[i]``.

    ``one_by_one`` runs each item as its own batch-1 call (bit-identical to a stock
    KSampler run with that seed, for every sampler); otherwise one batched call.
    Checks Cancel between passes.
    """
    n = samples.shape[0]
    # (first, last) item of each pass: every item alone, or the whole batch at once
    passes = [(i, i + 1) for i in range(n)] if one_by_one else [(0, n)]
    n_steps = (last_step if last_step is not None else steps) - (start_step or 0)
    outs = []
    for a, b in passes:
        comfy.model_management.throw_exception_if_processing_interrupted()
        part, part_seeds = samples[a:b], seeds[a:b]
        mask_part = noise_mask[a:b] if noise_mask is not None else None
        noise = (seeded_noise(part, part_seeds) if add_noise
                 else torch.zeros_like(part, device="cpu"))
        out = comfy.sample.sample(
            model, noise, steps, cfg, sampler_name, scheduler, positive, negative, part,
            denoise=1.0, disable_noise=not add_noise, start_step=start_step, last_step=last_step,
            force_full_denoise=force_full_denoise, noise_mask=mask_part,
            callback=progress.callback(), disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED,
            seed=int(part_seeds[0]))
        outs.append(out)
        progress.advance(n_steps)
    comfy.model_management.throw_exception_if_processing_interrupted()
    return torch.cat(outs, dim=0)
