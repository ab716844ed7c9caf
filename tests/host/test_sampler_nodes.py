"""LoTTS Sampler and the Best-of-N baseline inside real ComfyUI: counted NFE equals the
report and the formula, equal-NFE matching, k = 0 is Best-of-N, depth never hurts."""

import os
import re
import sys

import pytest
import torch

from comfy_host import interrupt_exception, progress_hook, require_comfyui

require_comfyui()

import comfy.model_management as mm  # noqa: E402
import folder_paths  # noqa: E402

from tiny_models import tiny_vae  # noqa: E402
from unet_support import PROMPT, empty_latent, model_state, models, run_node  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "core"))
import verifier_fixtures as vf  # noqa: E402

STEPS = 4


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("lotts_verifiers")
    vf.make_imagereward(root / "ImageReward")
    folder_paths.add_model_folder_path("lotts_verifiers", str(root), is_default=True)
    (v,) = run_node("LoTTSVerifierLoader", "ImageReward", "ImageReward/ImageReward.pt", "fp32").result
    yield v
    folder_paths.folder_names_and_paths["lotts_verifiers"][0].remove(str(root))


@pytest.fixture(scope="module")
def vae():
    return tiny_vae()


def run_lotts(verifier, vae, n=2, k=2, depth=1, cfg=7.0, start=1, harmonize=1, seed=0,
              sampler="euler"):
    model, clip, pos, neg = models()
    return run_node("LoTTSSampler", model, clip, vae, pos, neg, PROMPT, verifier, empty_latent(),
                                    seed, n, k, depth, STEPS, cfg, sampler, "normal", start,
                                    harmonize, 0.5, 0.5)


def run_bon(verifier, vae, m=2, cfg=7.0, seed=0, budget=""):
    model, _, pos, neg = models()
    return run_node("LoTTSBestOfN", model, pos, neg, empty_latent(), seed, STEPS, cfg, "euler",
                                    "normal", verifier, PROMPT, vae, m, budget)


def report_rows(report):
    rows = {}
    for line in report.splitlines():
        m = re.match(r"^(\w[\w +]*?)\s{2,}(\d+|-)\s+(\d+|-|n/a)\s+([\d.]+)$", line)
        if m:
            rows[m.group(1).strip()] = (m.group(2), m.group(3))
    return rows


class CountingWrapper:
    """Counts every image the denoiser sees, independently of the pack's own counter.

    A closure, not a callable object: ModelPatcher.clone() deep-copies model_options,
    which would copy an object (and its count) but keeps a function as it is.
    """

    def __init__(self, model):
        seen = self.seen = []

        def wrapper(apply_model, args):
            seen.append(args["input"].shape[0])
            return apply_model(args["input"], args["timestep"], **args["c"])

        self.model = model.clone()
        self.model.set_model_unet_function_wrapper(wrapper)

    @property
    def count(self):
        return sum(self.seen)


@pytest.mark.parametrize("n,k,depth,cfg,start,harmonize", [
    (2, 2, 1, 7.0, 1, 1),
    (3, 1, 1, 1.0, 2, 0),
    (2, 2, 2, 7.0, 1, 1),
    (1, 3, 3, 1.0, 0, 2),
    (2, 0, 1, 7.0, 1, 1),
])
def test_counted_nfe_equals_report_equals_formula(verifier, vae, n, k, depth, cfg, start, harmonize):
    from lotts.schedule import Plan
    model, clip, pos, neg = models()
    counter = CountingWrapper(model)
    out = run_node("LoTTSSampler", counter.model, clip, vae, pos, neg, PROMPT, verifier,
                                   empty_latent(), 0, n, k, depth, STEPS, cfg, "euler", "normal",
                                   start, harmonize, 0.5, 0.5)
    report = out.result[4]
    formula = Plan(n, STEPS, k, start, harmonize, depth).nfe(cfg)
    total = int(re.search(r"NFE total: (\d+)", report).group(1))
    assert counter.count == total == formula["total"]
    rows = report_rows(report)
    for stage in ("candidates", "probes", "refinement", "harmonization"):
        if formula[stage]:
            assert rows[stage] == (str(formula[stage]), str(formula[stage])), (stage, report)
    assert rows["total"] == (str(total), str(total))
    n_scored = n + (n * k + (depth - 1) * k if k else 0)
    assert f"scored {n_scored} images" in report
    assert out.result[2].shape[0] == n_scored  # all_images: every scored sample


def test_outputs_ranked_and_lineage(verifier, vae):
    out = run_lotts(verifier, vae, n=2, k=2)
    image, latent, all_images, masks, report = out.result
    scores = out.ui["lotts_scores"][0]["scores"]
    assert scores == sorted(scores, reverse=True) and len(scores) == 6
    assert torch.equal(image, all_images[:1])
    assert latent["samples"].shape == (1, 4, 16, 16)
    assert masks.shape == (2, 128, 128)
    labels = out.ui["lotts_scores"][0]["labels"]
    assert "candidate seed 0" in labels and "candidate seed 1" in labels
    from lotts.seeds import Stream, stage_seed
    assert (f"candidate seed 1 -> probe seed {stage_seed(0, Stream.PROBE, 1)} -> refinement seed "
            f"{stage_seed(0, Stream.REFINEMENT, 3)} -> harmonization seed "
            f"{stage_seed(0, Stream.HARMONIZATION, 3)} (depth 1)") in labels
    assert f"best: score {scores[0]:.4f} -- {labels[0]}" in report
    assert len(out.ui["lotts_candidates"]) == 2
    # what the localizer read and decided is in the report and the cost payload
    localizer = out.ui["lotts_cost"][0]["localizer"]
    assert localizer["propagation"] == "always" and len(localizer["decisions"]) == 2
    assert f"localizer (last round): cross attention of {', '.join(localizer['blocks'])}" in report
    assert out.ui["lotts_localizer"] == [localizer]  # the viewer shows it under each sample
    assert "propagated for 2 of 2 sample(s)" in report


def test_sampler_passes_the_localizer_options(verifier, vae):
    model, clip, pos, neg = models()
    out = run_node("LoTTSSampler", model, clip, vae, pos, neg, PROMPT, verifier, empty_latent(),
                   0, 2, 1, 1, STEPS, 7.0, "euler", "normal", 1, 1, 0.5, 0.5,
                   propagation="off", contrast_tokens="where the templates differ",
                   prior_words="cat")
    localizer = out.ui["lotts_cost"][0]["localizer"]
    assert localizer["prior_words"] == "cat" and localizer["prior_token_count"] == 1
    assert "prior on 'cat'" in out.result[4]
    assert localizer["propagation"] == "off" and localizer["propagated"] == [False, False]
    assert localizer["contrast_tokens"] == "where the templates differ"
    assert "propagation off" in out.result[4] and "propagated for 0 of 2 sample(s)" in out.result[4]


def test_refinements_zero_equals_best_of_n_with_same_seeds(verifier, vae):
    lotts = run_lotts(verifier, vae, n=3, k=0, seed=5)
    bon = run_bon(verifier, vae, m=3, seed=5)
    assert torch.equal(lotts.result[0], bon.result[0])
    assert torch.equal(lotts.result[1]["samples"], bon.result[1]["samples"])
    assert lotts.ui["lotts_scores"][0]["scores"] == bon.ui["lotts_scores"][0]["scores"]


def test_best_of_n_matches_the_lotts_budget(verifier, vae):
    lotts = run_lotts(verifier, vae, n=2, k=2, start=1, harmonize=1)
    report = lotts.result[4]
    bon = run_bon(verifier, vae, m=1, budget=report)
    lotts_total = int(re.search(r"NFE total: (\d+)", report).group(1))
    bon_total = int(re.search(r"NFE total: (\d+)", bon.result[3]).group(1))
    per_candidate = STEPS * 2
    assert abs(lotts_total - bon_total) <= per_candidate
    assert bon.result[2].shape[0] == round(lotts_total / per_candidate)
    assert torch.equal(run_bon(verifier, vae, m=1, budget=str(lotts_total)).result[0],
                       bon.result[0])
    with pytest.raises(ValueError, match="match_budget must be"):
        run_bon(verifier, vae, budget="lots")


def test_depth_two_never_scores_below_depth_one(verifier, vae):
    d1 = run_lotts(verifier, vae, n=2, k=2, depth=1, seed=3)
    d2 = run_lotts(verifier, vae, n=2, k=2, depth=2, seed=3)
    s1 = d1.ui["lotts_scores"][0]["scores"][0]
    s2 = d2.ui["lotts_scores"][0]["scores"][0]
    assert s2 >= s1
    # depth 2 adds k samples refined from depth 1's best
    labels = d2.ui["lotts_scores"][0]["labels"]
    assert sum("(depth 2)" in lab for lab in labels) == 2
    assert d2.result[3].shape[0] == 1  # the last round localized one sample


def test_sampler_is_reproducible_and_leaves_model_untouched(verifier, vae):
    model = models()[0]
    before = model_state(model)
    a = run_lotts(verifier, vae, n=2, k=1)
    b = run_lotts(verifier, vae, n=2, k=1)
    assert torch.equal(a.result[0], b.result[0])
    assert model_state(model) == before


def test_sampler_bad_inputs(verifier, vae):
    model, clip, pos, neg = models()
    with pytest.raises(ValueError, match="prompt is empty"):
        run_node("LoTTSSampler", model, clip, vae, pos, neg, " ", verifier, empty_latent(), 0, 2, 1, 1, STEPS,
                    7.0, "euler", "normal", 1, 1, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"start_step \(3\) \+ harmonize_steps \(1\) must be < "
                                         r"steps \(4\)"):
        run_lotts(verifier, vae, start=3, harmonize=1)


def test_cancel_anywhere_in_the_sampler(verifier, vae):
    calls = []

    def hook(value, total, preview, node_id=None):
        calls.append(value)
        if len(calls) == 6:  # somewhere after the fan-out, inside localize/refine
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()

    try:
        with pytest.raises(interrupt_exception()), progress_hook(hook):
            run_lotts(verifier, vae, n=2, k=2)
    finally:
        mm.interrupt_current_processing(False)
    assert len(calls) == 6
    # one bar across the whole run: values only grow
    assert calls == sorted(calls)
