"""The one-node search and the stages under it: seed streams, replayable lineages,
depth-first descent, bounded inputs, empty masks, memory-aware batches."""

import re

import pytest
import torch

from comfy_host import interrupt_exception, progress_hook, require_comfyui

require_comfyui()

import comfy.model_management as mm  # noqa: E402
import comfy.sample  # noqa: E402

from tiny_models import tiny_vae  # noqa: E402
from unet_support import PROMPT, empty_latent, models, pack_module, run_node  # noqa: E402

STEPS = 4
TOP = 2 ** 64 - 1


@pytest.fixture(scope="module")
def vae():
    return tiny_vae()


class PlantedVerifier:
    """Scores handed out in call order (a list per scoring call): lets a test decide which
    sample is best at each depth. Every other image gets 0."""

    name = "planted"

    def __init__(self, rounds):
        self.rounds, self.calls = list(rounds), 0

    def score(self, images, prompt, batch_size=None):
        planted = self.rounds[self.calls] if self.calls < len(self.rounds) else []
        self.calls += 1
        return torch.tensor([planted[i] if i < len(planted) else 0.0 for i in range(images.shape[0])])


class MeanVerifier:
    """A deterministic score from the image itself (its mean brightness)."""

    name = "mean"

    def score(self, images, prompt, batch_size=None):
        return images.float().mean(dim=(1, 2, 3))


def sampler(vae, verifier, seed=0, n=2, k=2, depth=1, start=1, harmonize=1, sampler="euler",
            **kw):
    model, clip, pos, neg = models()
    return run_node("LoTTSSampler", model, clip, vae, pos, neg, PROMPT, verifier, empty_latent(),
                    seed, n, k, depth, STEPS, 7.0, sampler, "normal", start, harmonize, 0.5, 0.5,
                    **kw)


# --- seeds: every stage its own stream; lineages replay with the separate nodes ----------

SEEDS_RE = re.compile(r"candidate seed (\d+) -> probe seed (\d+) -> refinement seed (\d+) -> "
                      r"harmonization seed (\d+) \(depth 1\)$")


@pytest.mark.parametrize("name", ["euler", "euler_ancestral", "dpmpp_2m_sde"])
def test_every_lineage_replays_with_the_separate_nodes(vae, name, monkeypatch):
    seeds = pack_module("lotts.seeds")
    schedule = pack_module("lotts.schedule")
    pool = pack_module("nodes.search").Pool
    latents = {}  # every scored sample's latent, by lineage (the node returns only the best)
    real_score = pool.score

    def recording(self, new, *args):
        latents.update({s.lineage: s.latent for s in new})
        return real_score(self, new, *args)

    monkeypatch.setattr(pool, "score", recording)
    model, clip, pos, neg = models()
    sampler(vae, MeanVerifier(), seed=11, n=2, k=2, start=1, harmonize=1, sampler=name)
    replayed = 0
    for label, latent in latents.items():
        m = SEEDS_RE.match(label)
        if not m:
            continue
        c, p, r, h = (int(g) for g in m.groups())
        S = seeds.Stream
        cand = run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), c, 1, STEPS, 7.0,
                        name, "normal").result[0]
        mask, _ = run_node("LoTTSDefectLocalizer", model, clip, PROMPT, cand, 0.5, 0.5,
                           schedule.probe_step_for(STEPS), "A high-quality image of {p}",
                           "A low-quality image of {p}", seeds.base_seed_for(p, S.PROBE),
                           steps=STEPS, scheduler="normal", positive=pos).result
        refined = run_node("LoTTSMaskedRefine", model, pos, neg, cand, mask,
                           seeds.base_seed_for(r, S.REFINEMENT), 1, STEPS, 7.0, name, "normal",
                           1, STEPS - 1).result[0]
        done = run_node("LoTTSHarmonize", model, pos, neg, refined,
                        seeds.base_seed_for(h, S.HARMONIZATION), STEPS, 7.0, name, "normal",
                        STEPS - 1, False).result[0]
        again = done["samples"]
        if name == "euler":  # batched in the node: equal to float tolerance
            assert torch.allclose(again, latent, atol=1e-4), (label, (again - latent).abs().max())
        else:                # one by one in the node: bit for bit
            assert torch.equal(again, latent), (label, (again - latent).abs().max())
        replayed += 1
    assert replayed == 4  # N x k refinements


@pytest.mark.parametrize("seed", [0, 2 ** 32 - 1, 2 ** 32, 2 ** 63, TOP])
def test_every_stage_and_item_draws_noise_of_its_own(vae, seed, monkeypatch):
    """N = 4, k = 2, depth 2 with euler_ancestral: the noise ComfyUI really draws -- for 4
    candidates, 5 probes, 10 refinements and 10 harmonizations -- is different for every
    (stage, item). (PyTorch's CPU generator keeps only a seed's low 32 bits: streams 2**32
    apart drew the candidates' noise again.)"""
    if seed == TOP and (why := _host_noise_refuses(TOP)):  # candidate 0's seed is TOP itself
        pytest.skip(f"this host's own ancestral noise sampler fails at seed 2**64-1 in a "
                    f"stock KSampler too ({why})")
    real_prepare, real_sample = comfy.sample.prepare_noise, comfy.sample.sample
    drawn = {}  # seed -> the noise comfy.sample.prepare_noise drew for it

    def prepare_noise(latent, noise_seed, *args, **kw):
        out = real_prepare(latent, noise_seed, *args, **kw)
        drawn.setdefault(int(noise_seed), out)
        return out

    sampler_seeds = []  # the seed of each sampler call: an ancestral sampler's own noise

    def sample(*args, seed=None, **kw):
        sampler_seeds.append(int(seed))
        return real_sample(*args, seed=seed, **kw)

    monkeypatch.setattr(comfy.sample, "prepare_noise", prepare_noise)
    monkeypatch.setattr(comfy.sample, "sample", sample)
    out = sampler(vae, MeanVerifier(), seed=seed, n=4, k=2, depth=2, sampler="euler_ancestral")
    assert out.ui["lotts_cost"][0]["scored"] == 4 + 5 * 2
    # harmonization adds no noise (add_noise off): its noise is the ancestral sampler's,
    # drawn on the CPU as prepare_noise draws it (the generator seeded with the call's seed)
    for s in sampler_seeds:
        drawn.setdefault(s, real_prepare(empty_latent()["samples"], s))
    assert len(drawn) == 4 + 5 + 10 + 10
    noises = list(drawn.items())
    same = [(a, b) for i, (a, x) in enumerate(noises) for b, y in noises[i + 1:] if torch.equal(x, y)]
    assert not same, f"seeds drawing the same noise: {same[:4]}"


def test_stages_never_share_noise_even_with_one_seed_widget():
    """A staged workflow wires one seed to Fan-Out and Masked Refine: refinement j must
    not reuse candidate j's noise (it did when both used seed + j)."""
    seeds = pack_module("lotts.seeds")
    cand = seeds.stage_seeds(5, seeds.Stream.CANDIDATES, 8)
    used = {s: set(seeds.stage_seeds(5, s, 8)) for s in seeds.Stream}
    assert set(cand) == used[seeds.Stream.CANDIDATES]
    assert all(not (used[a] & used[b]) for a in seeds.Stream for b in seeds.Stream if a < b)


def _host_noise_refuses(seed: int) -> str | None:
    """Why ComfyUI's own ancestral noise sampler (what a stock KSampler uses) cannot take
    ``seed`` on the CPU, or None. Upstream's CPU noise fix (1e4e342f, Dec 2025; in the 0.10
    fork) seeds it with seed + 1, which overflows at 2**64 - 1."""
    import comfy.k_diffusion.sampling as ks
    try:
        ks.default_noise_sampler(torch.zeros(1), seed=seed)
    except (RuntimeError, OverflowError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return None


@pytest.mark.parametrize("sampler_name", ["euler", "euler_ancestral"])
def test_seed_at_the_top_of_the_widget_range_works_everywhere(vae, sampler_name):
    if sampler_name == "euler_ancestral" and (why := _host_noise_refuses(TOP)):
        pytest.skip(f"this host's own ancestral noise sampler fails at seed 2**64-1 in a "
                    f"stock KSampler too ({why})")
    model, clip, pos, neg = models()
    cands = run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), TOP, 2, STEPS, 7.0,
                     sampler_name, "normal").result[0]
    ref = run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), 0, 1, STEPS, 7.0,
                   sampler_name, "normal").result[0]
    assert torch.equal(cands["samples"][1:], ref["samples"])  # TOP + 1 wraps to 0
    out = sampler(vae, MeanVerifier(), seed=TOP, n=2, k=1)
    labels = out.ui["lotts_scores"][0]["labels"]
    assert any(lab.startswith("candidate seed 0 ") or lab == "candidate seed 0" for lab in labels)
    assert any(lab == f"candidate seed {TOP}" for lab in labels)


# --- depth-first search ----------------------------------------------------------------------

def test_depth_descends_into_the_best_child_and_returns_the_global_best(vae):
    # call 1 scores [c0, c1, r00, r01, r10, r11]: c0 is the global best, r01 the best child;
    # call 2 scores depth 2's two children, neither better than r01 (0.5)
    planted = PlantedVerifier([[0.9, 0.1, 0.2, 0.5, 0.3, 0.4], [0.45, 0.3], [0.2, 0.1]])
    out = sampler(vae, planted, n=2, k=2, depth=3)
    cost = out.ui["lotts_cost"][0]
    def lineage_of(score):
        (found,) = [lin for sc, lin in zip(cost["scores"], cost["lineage"]) if abs(sc - score) < 1e-6]
        return found

    depth2, depth3 = cost["path"][1], cost["path"][2]
    assert depth2["expanded"] == [lineage_of(0.5)] and depth2["score"] == pytest.approx(0.5)
    assert depth3["expanded"] == [lineage_of(0.45)] and depth3["score"] == pytest.approx(0.45)
    assert depth3["expanded"][0].endswith("(depth 2)")
    assert cost["scores"][0] == pytest.approx(0.9) and cost["lineage"][0] == lineage_of(0.9)
    assert "candidate seed 0" == cost["lineage"][0]
    assert "search path:" in out.result[4] and "depth 3: refined" in out.result[4]


# --- bounded, clearly refused inputs -------------------------------------------------------

def test_match_budget_beyond_the_maximum_is_refused_before_any_work(vae):
    model, _, pos, neg = models()
    cls = pack_module("nodes.best_of_n").LoTTSBestOfN
    for budget, m in (("NFE total: 10000000000000", 1250000000000), (str(1025 * STEPS * 2), 1025)):
        with pytest.raises(ValueError, match=rf"match_budget: .* is {m} samples .* maximum of 1024"):
            run_node("LoTTSBestOfN", model, pos, neg, empty_latent(), 0, STEPS, 7.0, "euler",
                     "normal", MeanVerifier(), PROMPT, vae, 1, budget)
        assert "maximum of 1024" in cls.validate_inputs(STEPS, 7.0, "euler", "normal", budget)
    assert cls.validate_inputs(STEPS, 7.0, "euler", "normal", "80") is True


def test_harmonize_steps_too_large_names_the_samplers_inputs(vae):
    cls = pack_module("nodes.lotts_sampler").LoTTSSampler
    msg = cls.validate_inputs(steps=4, sampler_name="euler", scheduler="normal", refinements=1,
                              start_step=2, harmonize_steps=2)
    assert "start_step (2) + harmonize_steps (2) must be < steps (4)" in msg
    assert "end_step" not in msg
    with pytest.raises(ValueError, match=r"harmonize_steps \(2\)"):
        sampler(vae, MeanVerifier(), start=2, harmonize=2)
    refine = pack_module("nodes.masked_refine").LoTTSMaskedRefine
    assert "end_step (5) is past" in refine.validate_inputs(4, "euler", "normal", 1, 5)
    harm = pack_module("nodes.harmonize").LoTTSHarmonize
    msg = harm.validate_inputs(4, "euler", "normal", 4)
    assert "start_step (4) must be >= 0 and < steps (4)" in msg


# --- an empty mask costs nothing -------------------------------------------------------------

def counting(model):
    seen = []
    m = model.clone()

    def wrapper(apply_model, args):
        seen.append(args["input"].shape[0])
        return apply_model(args["input"], args["timestep"], **args["c"])

    m.set_model_unet_function_wrapper(wrapper)
    return m, seen


def test_empty_mask_makes_no_model_call_and_hands_on_what_sampling_would():
    model, _, pos, neg = models()
    cands = run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), 3, 2, STEPS, 7.0,
                     "euler", "normal").result[0]
    m, seen = counting(model)
    zero = torch.zeros(2, 128, 128)
    full = run_node("LoTTSMaskedRefine", m, pos, neg, cands, zero, 0, 2, STEPS, 7.0, "euler",
                    "normal", 1, STEPS).result[0]
    assert seen == [] and torch.equal(full["samples"], cands["samples"].repeat_interleave(2, 0))
    # end_step < steps: the candidate re-noised to end_step, as masked sampling leaves the
    # region outside a mask -- compare with a run whose mask is one 8x8 latent corner
    partial = run_node("LoTTSMaskedRefine", m, pos, neg, cands, zero, 0, 1, STEPS, 7.0, "euler",
                       "normal", 1, STEPS - 1).result[0]["samples"]
    assert seen == []
    corner = torch.zeros(2, 128, 128)
    corner[:, :16, :16] = 1
    ref = run_node("LoTTSMaskedRefine", model, pos, neg, cands, corner, 0, 1, STEPS, 7.0, "euler",
                   "normal", 1, STEPS - 1).result[0]["samples"]
    outside = torch.ones_like(ref, dtype=torch.bool)
    outside[..., :2, :2] = False
    assert torch.allclose(partial[outside], ref[outside], atol=1e-4), (partial - ref)[outside].abs().max()


# --- memory-aware batches --------------------------------------------------------------------

@pytest.fixture
def small_memory(monkeypatch):
    """ComfyUI's free-memory estimate forced down so that two images fit per model call."""
    sampling = pack_module("nodes.sampling")
    model = models()[0]
    per_image = model.model.memory_required([2, 4, 16, 16]) * sampling.MEMORY_MARGIN
    unloaded = model.model_size() - model.loaded_size()
    monkeypatch.setattr(sampling, "free_memory", lambda device: unloaded + 2.5 * per_image)
    return sampling


def test_batches_follow_free_memory_and_give_identical_latents(small_memory):
    model, _, pos, neg = models()
    whole = run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), 1, 8, STEPS, 7.0, "euler",
                     "normal", max_batch=8).result[0]["samples"]
    m, seen = counting(model)
    chunked = run_node("LoTTSSeedFanOut", m, pos, neg, empty_latent(), 1, 8, STEPS, 7.0, "euler",
                       "normal").result[0]["samples"]
    assert max(seen) == 4 and sum(seen) == 8 * STEPS * 2  # 2 images x (cond + uncond) a call
    # equal up to float rounding: a CPU's kernels may sum in another order for another batch
    # size (measured here: 1e-4 on values of ~100)
    assert torch.allclose(chunked, whole, rtol=1e-5, atol=1e-4), (chunked - whole).abs().max()
    seen.clear()
    run_node("LoTTSSeedFanOut", m, pos, neg, empty_latent(), 1, 8, STEPS, 7.0, "euler", "normal",
             max_batch=3)
    assert max(seen) == 6


def test_progress_and_cancel_hold_across_chunks(small_memory):
    model, _, pos, neg = models()
    calls, cancel_at = [], [None]

    def hook(value, total, preview, node_id=None):
        calls.append((value, total))
        if len(calls) == cancel_at[0]:  # inside the second chunk
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()

    try:
        with progress_hook(hook):
            run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), 1, 6, STEPS, 7.0, "euler",
                     "normal")
        values = [v for v, _ in calls]
        assert values == sorted(values) and values[-1] == 6 * STEPS and calls[0][1] == 6 * STEPS
        calls.clear()
        cancel_at[0] = STEPS + 2
        with pytest.raises(interrupt_exception()), progress_hook(hook):
            run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), 1, 6, STEPS, 7.0, "euler",
                     "normal")
        assert len(calls) == STEPS + 2  # stopped in the second of three chunks
    finally:
        mm.interrupt_current_processing(False)


def test_probes_of_all_candidates_share_model_calls():
    model, clip, pos, neg = models()
    cands = run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), 1, 4, STEPS, 7.0, "euler",
                     "normal").result[0]
    m, seen = counting(model)
    together = run_node("LoTTSDefectLocalizer", m, clip, PROMPT, cands, 0.5, 0.5, 2,
                        "A high-quality image of {p}", "A low-quality image of {p}", 0,
                        steps=STEPS).result
    assert len(seen) <= 2 and sum(seen) == 4 * 3  # 3 conditionings x 4 candidates, 2 calls
    assert max(seen) <= 2 * 4                     # never more than a CFG step of the fan-out
    alone = run_node("LoTTSDefectLocalizer", model, clip, PROMPT, cands, 0.5, 0.5, 2,
                     "A high-quality image of {p}", "A low-quality image of {p}", 0,
                     steps=STEPS, max_batch=1).result
    assert torch.equal(together[0], alone[0])
