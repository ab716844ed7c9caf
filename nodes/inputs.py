"""The catalogue of inputs the LoTTS nodes share: each declared once, with one tooltip
and one range, so the nodes cannot drift apart.

Input names, order and defaults are public API (saved workflows store widget values by
position): a node lists these in the order it always had.
"""

from __future__ import annotations

import comfy.samplers
from comfy_api.latest import io

from ..lotts.prompts import DEFAULT_NEGATIVE_TEMPLATE, DEFAULT_POSITIVE_TEMPLATE

CATEGORY = "LoTTS"
SEED_MAX = 0xffffffffffffffff
STEP_MAX = 10000
Verifier = io.Custom("LOTTS_VERIFIER")


def model():
    return io.Model.Input("model", tooltip="The diffusion model, as loaded by a checkpoint "
                                           "loader. LoTTS never patches it in place (it works "
                                           "on a clone).")


def positive(optional=False, tooltip=None):
    return io.Conditioning.Input("positive", optional=optional, tooltip=tooltip or (
        "The conditioning the candidates were sampled with (what you want in the image)."))


def negative():
    return io.Conditioning.Input("negative", tooltip="The negative conditioning used with the "
                                                     "positive one.")


def clip():
    return io.Clip.Input("clip", tooltip="The checkpoint's text encoder, to encode the quality "
                                         "prompts.")


def vae(optional=False, tooltip=None):
    return io.Vae.Input("vae", optional=optional, tooltip=tooltip or (
        "The checkpoint's VAE: samples are decoded for the verifier."))


def prompt(tooltip):
    return io.String.Input("prompt", multiline=True, default="", tooltip=tooltip)


def verifier(tooltip="A verifier from LoTTS Verifier Loader."):
    return Verifier.Input("verifier", tooltip=tooltip)


def batch1_latent(name="latent_image"):
    return io.Latent.Input(name, tooltip="A batch-1 latent, e.g. Empty Latent Image: every "
                                         "candidate starts from it.")


def candidates_latent():
    return io.Latent.Input("candidates", tooltip="The N candidate latents (from LoTTS Seed "
                                                 "Fan-Out), or any batch of latents to fix.")


def seed():
    return io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True,
                        tooltip="Base seed. Item i of this node draws its noise from seed + i "
                                "on the node's own stream (candidates: exactly seed + i), so "
                                "one seed can feed every LoTTS node without two stages "
                                "sharing noise. Wraps around at 2^64.")


def candidate_count():
    return io.Int.Input("candidates", default=4, min=1, max=256,
                        tooltip="N: how many candidates to sample, from seeds seed .. "
                                "seed+N-1 (the paper's N).")


def refinement_count(minimum=1):
    return io.Int.Input("refinements", default=2, min=minimum, max=64,
                        tooltip="k: localized re-samplings per candidate (the paper's best is "
                                "2)." + (" 0 = plain Best-of-N." if minimum == 0 else ""))


def steps(default=20, tooltip=None, optional=False):
    return io.Int.Input("steps", default=default, min=1, max=STEP_MAX, optional=optional,
                        tooltip=tooltip or ("Steps of the full schedule. Use the same value as "
                                            "for the candidates: start/end steps index into "
                                            "this schedule."))


def cfg():
    return io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                          tooltip="Classifier-free guidance scale, as in KSampler.")


def sampler_name():
    return io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS,
                          tooltip="Sampler, as in KSampler.")


def scheduler(optional=False):
    return io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS,
                          optional=optional, tooltip="Scheduler, as in KSampler.")


def start_step(default, tooltip):
    return io.Int.Input("start_step", default=default, min=0, max=STEP_MAX, tooltip=tooltip)


def mask_ratio():
    return io.Float.Input("mask_ratio", default=0.5, min=0.01, max=1.0, step=0.01,
                          tooltip="r: share of each image marked for re-sampling (the "
                                  "paper's best is 0.5).")


def prior_weight():
    return io.Float.Input("prior_weight", default=0.5, min=0.0, max=10.0, step=0.05,
                          tooltip="lambda: weight of the prompt's own attention (a foreground "
                                  "prior) added to the quality contrast. 0 = contrast only. "
                                  "The paper gives no value; 0.5 is ours.")


def template(name):
    default = DEFAULT_POSITIVE_TEMPLATE if name == "positive_template" else DEFAULT_NEGATIVE_TEMPLATE
    kind = "High-quality" if name == "positive_template" else "Low-quality"
    return io.String.Input(name, default=default,
                           tooltip=f"'{kind}' prompt; {{p}} is replaced by the prompt.")


def max_batch():
    return io.Int.Input("max_batch", default=0, min=0, max=4096, optional=True,
                        tooltip="Most images per model call. 0 = automatic: as many as fit in "
                                "the device's free memory (ComfyUI's own estimate). For batch-safe "
                                "samplers it changes results only by float rounding.")
