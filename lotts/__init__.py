"""LoTTS core: localized test-time scaling for diffusion models, in pure torch.

This package holds the method's math (arXiv:2511.19917) and nothing of the host: it never
imports ComfyUI, so it is tested everywhere and usable from any diffusion code. The
ComfyUI nodes in ``nodes/`` are a thin layer over it.

One module per stage or policy (import them directly; this file re-exports nothing, so
``lotts.schedule`` and ``lotts.seeds`` import without torch):
    prompts    quality-prompt templates ("A high-quality image of {p}" / "A low-quality ...")
    attention  running reductions of captured attention into maps (never per layer/head),
               joint-attention slicing for DiTs
    blocks     which attention layers the localizer reads
    localize   contrast -> propagation -> reweighting -> top-r mask, mask placement
    schedule   step windows, the run's plan, NFE and progress units, sampler facts
    seeds      one noise stream per stage
    preview    heatmap colouriser and mask overlay for previews
    verifiers  ImageReward, HPSv2, PickScore, CLIP score, aesthetic (torch + transformers)
"""
