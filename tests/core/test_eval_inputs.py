"""Eval runner: prompt files, options, NFE budget matching and the API graphs it queues."""

import pytest

from lotts_eval import (EvalError, Settings, bon_graph, expected_bon_samples, lotts_graph,
                        parse_budgets, parse_verifiers, plan, read_prompts)
from lotts_eval.runner import read_outputs
from lotts.schedule import Plan, best_of_n_nfe

IR = (("ImageReward", "ImageReward", "ImageReward/ImageReward.pt"),)


def settings(**kw):
    kw.setdefault("verifiers", IR)
    return Settings(ckpt="tiny.safetensors", **kw)


def test_prompt_file_skips_blanks_comments_and_duplicates(tmp_path):
    p = tmp_path / "prompts.txt"
    p.write_text("# a comment\n\na red cat, on a chair\n  a \"quoted\" dog  \r\n"
                 "a red cat, on a chair\n\n# another\nthe moon\n", encoding="utf-8")
    assert read_prompts(str(p)) == ["a red cat, on a chair", 'a "quoted" dog', "the moon"]


def test_prompt_file_errors_are_clear(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(EvalError, match="has no prompts"):
        read_prompts(str(empty))
    with pytest.raises(EvalError, match="cannot read the prompt file"):
        read_prompts(str(tmp_path / "missing.txt"))


def test_shipped_example_prompts_parse():
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "prompts.txt"
    prompts = read_prompts(str(path))
    assert 5 <= len(prompts) <= 20


def test_budgets_and_verifiers():
    assert parse_budgets("4, 1,2,2") == (1, 2, 4)
    for bad in ("", "0", "a,b", "1,-2"):
        with pytest.raises(EvalError, match="--budgets"):
            parse_budgets(bad)
    v = parse_verifiers(["ImageReward", "HPSv2.1:my/hps.pt"])
    assert v == (("ImageReward", "ImageReward", "ImageReward/ImageReward.pt"),
                 ("HPSv2.1", "HPSv2.1", "my/hps.pt"))
    # one name twice: columns keep the weights apart
    v = parse_verifiers(["ImageReward", "ImageReward:other/ImageReward.pt"])
    assert [x[0] for x in v] == ["ImageReward:ImageReward/ImageReward.pt",
                                 "ImageReward:other/ImageReward.pt"]
    with pytest.raises(EvalError, match="given twice"):
        parse_verifiers(["ImageReward", "ImageReward"])
    with pytest.raises(EvalError, match="unknown verifier"):
        parse_verifiers(["NoSuch"])
    with pytest.raises(EvalError, match="at least one --verifier"):
        parse_verifiers([])


def test_settings_validate_steps():
    with pytest.raises(EvalError, match="--start-step"):
        settings(steps=10, start_step=8, harmonize_steps=3)
    with pytest.raises(EvalError, match="multiples of 8"):
        settings(width=100)
    settings(steps=10, start_step=8, harmonize_steps=3, k=0)  # k = 0: no refinement, any t0


@pytest.mark.parametrize("cfg", [7.0, 1.0])
@pytest.mark.parametrize("steps,t0,h,k", [(20, 10, 3, 2), (4, 2, 1, 2), (30, 9, 0, 1), (50, 25, 3, 4)])
def test_budget_matching_is_within_half_a_sample(cfg, steps, t0, h, k):
    s = settings(steps=steps, start_step=t0, harmonize_steps=h, k=k, cfg=cfg, budgets=(1, 2, 4, 8))
    for p in plan(s):
        lt = Plan(p["budget"], steps, k, t0, h).nfe(cfg)["total"]
        assert p["lotts_nfe"] == lt
        m = expected_bon_samples(lt, steps, cfg)
        assert p["bon_samples"] == m and p["bon_nfe"] == best_of_n_nfe(m, steps, cfg)
        per_sample = best_of_n_nfe(1, steps, cfg)
        assert abs(p["bon_nfe"] - lt) <= per_sample / 2  # the closest whole M
        assert m >= p["budget"]  # Best-of-N always gets at least LoTTS's candidate pool


def test_paper_setting_plan():
    # SD1.5, T=20, t0=10, h=3, k=2, cfg 7: N=1 -> 40 + 3 + 40 = 83 NFE -> M=2 (80 NFE)
    assert plan(settings(budgets=(1, 4)))[0] == {"budget": 1, "lotts_nfe": 83, "bon_samples": 2,
                                                 "bon_nfe": 80}


def test_graphs_wire_both_methods_identically():
    s = settings(verifiers=parse_verifiers(["ImageReward", "HPSv2.1"]), steps=8, start_step=4,
                 harmonize_steps=1, width=64, height=96, seed=7)
    lg, bg = lotts_graph("a cat", s, 2), bon_graph("a cat", s, 35)
    for g in (lg, bg):
        assert g["1"] == {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}}
        assert g["2"]["inputs"] == {"text": "a cat", "clip": ["1", 1]}
        assert g["4"]["inputs"] == {"width": 64, "height": 96, "batch_size": 1}
        assert g["100"]["inputs"] == {"verifier": "ImageReward", "weights": "ImageReward/ImageReward.pt",
                                      "precision": "auto"}
        assert g["101"]["inputs"]["verifier"] == "HPSv2.1"
        assert g["201"]["class_type"] == "LoTTSVerifierPick"
        assert g["201"]["inputs"]["images"] == ["20", 0] and g["201"]["inputs"]["verifier"] == ["101", 0]
        assert g["301"] == {"class_type": "PreviewAny", "inputs": {"source": ["201", 3]}}
        # every link points at a node of the graph
        for node in g.values():
            for v in node["inputs"].values():
                if isinstance(v, list):
                    assert v[0] in g
    li, bi = lg["20"]["inputs"], bg["20"]["inputs"]
    assert lg["20"]["class_type"] == "LoTTSSampler" and bg["20"]["class_type"] == "LoTTSBestOfN"
    assert li["candidates"] == 2 and li["refinements"] == 2 and li["start_step"] == 4
    assert bi["match_budget"] == "35"
    for key in ("seed", "steps", "cfg", "sampler_name", "scheduler", "model", "positive",
                "negative", "latent_image", "vae", "verifier", "prompt"):
        assert li[key] == bi[key], key


def test_read_outputs():
    s = settings(verifiers=parse_verifiers(["ImageReward", "HPSv2.1"]))
    entry = {"outputs": {"20": {"text": ["Best-of-N report: M=3 T=4\nNFE total: 24"],
                                "lotts_cost": [{"nfe_total": 24, "samples": 3}],
                                "lotts_scores": [{"scores": [0.5, 0.1]}]},
                         "201": {"lotts_scores": [{"scores": [0.25, 0.2]}]}}}
    out = read_outputs(entry, s)
    assert out["nfe"] == 24 and out["samples"] == 3
    assert out["scores"] == {"ImageReward": 0.5, "HPSv2.1": 0.25}
    del entry["outputs"]["201"]
    with pytest.raises(EvalError, match="score is missing"):
        read_outputs(entry, s)
    # the cost is read from the payload, never from the report's text
    entry["outputs"]["20"].pop("lotts_cost")
    with pytest.raises(EvalError, match="carry no cost"):
        read_outputs(entry, s)
