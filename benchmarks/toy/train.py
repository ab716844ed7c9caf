"""Train a toy-world U-Net (tests/host/toy_models.py) on toy_world scenes.

Fixed number of steps and explicit seeds (no wall-clock stop): the data of step s comes
from a generator seeded with (seed, s), the weights start from init_weights(seed).
Epsilon-prediction loss on ComfyUI's SD1.5 sigmas: a discrete timestep t is drawn
uniformly from 0..999, sigma = model_sampling.sigmas[t], x = x0 + sigma * eps, and the
U-Net is called through ComfyUI's own ``BaseModel.apply_model`` (which applies
``model_sampling.calculate_input`` and the timestep mapping exactly as sampling does);
its output is converted back to the predicted eps. AdamW at a constant learning rate
after a linear warm-up, gradient clipping, and an EMA of the weights (decay 0.999).
The EMA is saved bias-corrected -- ``(ema - d^s * w0) / (1 - d^s)``, the initial random
weights' share removed: uncorrected, 13 % of the EMA at step 2000 is still the random
init, and its samples are pure noise. With no decay schedule, what is saved at step s is
exactly what ``--steps s`` trains, so the milestone snapshots (``unet_ema_<s>`` and the
raw weights ``unet_raw_<s>``) show how the signal grows with training.

Checkpoints (every --save-every steps) go to the cache folder, so a killed run resumes
where it stopped; the final EMA weights are written as safetensors.

    nice -n 10 ~/ComfyUI/.venv/bin/python benchmarks/toy/train.py --variant 16 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import time

import toy_env

toy_env.setup()

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import toy_models as tm  # noqa: E402
import toy_world as tw  # noqa: E402

MILESTONES = (500, 1000, 2000, 3000, 4000, 6000, 8000)


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=tm.VARIANTS, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--steps", type=int, default=None, help="default: toy_models.STEPS (4000 for 16, 2000 for 32)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="folder (default: the toy cache for variant/seed)")
    return ap.parse_args()


def lr_at(step: int, base: float, warmup: int) -> float:
    return base * min(1.0, (step + 1) / warmup)


def main():
    a = parse()
    torch.set_num_threads(a.threads)
    steps = a.steps or tm.STEPS[a.variant]
    size = tm.latent_size(a.variant)
    out = a.out or tm.run_dir(a.variant, a.seed)
    os.makedirs(out, exist_ok=True)
    ckpt_path = os.path.join(out, "ckpt.pt")

    mp = tm.build_unet(a.variant, init_seed=a.seed)
    model = mp.model
    net = model.diffusion_model
    net.train()
    sigmas = model.model_sampling.sigmas.float()
    captions = tw.training_captions()
    index = {c: i for i, c in enumerate(captions)}
    with torch.no_grad():
        contexts = tm.encode_captions(tm.toy_clip(), captions)

    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=0.0)
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    init = {k: v.clone() for k, v in ema.items()}

    def save_weights(step_done: int, suffix: str):
        share = a.ema ** step_done
        corrected = {k: ((v - share * init[k]) / (1 - share) if v.is_floating_point() else v)
                     for k, v in ema.items()}
        meta = {"step": str(step_done), "variant": a.variant, "seed": str(a.seed)}
        save_file({k: v.contiguous() for k, v in corrected.items()},
                  os.path.join(out, f"unet_ema{suffix}.safetensors"),
                  metadata={**meta, "weights": "ema, bias-corrected"})
        save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()},
                  os.path.join(out, f"unet_raw{suffix}.safetensors"),
                  metadata={**meta, "weights": "raw"})
    start, log = 0, []
    if os.path.isfile(ckpt_path):
        state = torch.load(ckpt_path, weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema = state["ema"]
        start, log = int(state["step"]), json.loads(state["log"])
        print(f"resumed at step {start}", flush=True)
    params = sum(p.numel() for p in net.parameters())
    print(f"variant {a.variant} seed {a.seed}: {params / 1e6:.3f} M params, {steps} steps, "
          f"batch {a.batch}, out {out}", flush=True)

    t0, running = time.time(), []
    for step in range(start, steps):
        g = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
        x0, caps = tw.training_batch(g, a.batch, size)
        t = torch.randint(0, len(sigmas), (a.batch,), generator=g)
        sigma = sigmas[t]
        eps = torch.randn(x0.shape, generator=g)
        x = x0 + eps * sigma.view(-1, 1, 1, 1)
        ctx = contexts[[index[c] for c in caps]]
        denoised = model.apply_model(x, sigma, c_crossattn=ctx)
        eps_pred = (x - denoised) / sigma.view(-1, 1, 1, 1)
        loss = torch.nn.functional.mse_loss(eps_pred, eps)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, a.lr, a.warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if v.is_floating_point():
                    ema[k].mul_(a.ema).add_(v.detach(), alpha=1 - a.ema)
                else:
                    ema[k].copy_(v)
        running.append(float(loss.detach()))
        done = step + 1
        if done % 50 == 0:
            mean = sum(running) / len(running)
            running = []
            log.append([done, round(mean, 5)])
            rate = (done - start) / (time.time() - t0)
            print(f"step {done}/{steps} loss {mean:.4f} {rate:.2f} steps/s", flush=True)
        if done in MILESTONES:
            save_weights(done, f"_{done}")
        if done % a.save_every == 0 or done == steps:
            tmp = ckpt_path + ".tmp"
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "ema": ema,
                        "step": done, "log": json.dumps(log)}, tmp)
            os.replace(tmp, ckpt_path)

    if start > steps:
        raise SystemExit(f"{ckpt_path} is at step {start}, past --steps {steps}: use the "
                         f"milestone files or another --out")
    save_weights(steps, "")
    with open(os.path.join(out, "train.json"), "w") as f:
        json.dump({"variant": a.variant, "seed": a.seed, "steps": steps, "batch": a.batch,
                   "lr": a.lr, "ema": a.ema, "params": params, "loss_log": log,
                   "seconds_this_run": round(time.time() - t0, 1)}, f)
    print(f"saved {out}/unet_ema.safetensors and unet_raw.safetensors", flush=True)


if __name__ == "__main__":
    main()
