"""Write the host tests' fixture: the 16x16 toy U-Net of training seed 0 (EMA weights at
its final step, toy_models.STEPS["16"]) cast to fp16, 2 MB, as
tests/host/data/toy16_s0_fp16.safetensors. Train it first (benchmarks/README.md).

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/toy/make_fixture.py
"""

import os

import toy_env

toy_env.setup()

from safetensors.torch import load_file, save_file  # noqa: E402

import toy_models as tm  # noqa: E402

OUT = os.path.join(toy_env.ROOT, "tests", "host", "data", "toy16_s0_fp16.safetensors")


def main():
    src = tm.weights_path("16", 0, tm.STEPS["16"])
    sd = load_file(src)
    save_file({k: v.half().contiguous() for k, v in sd.items()}, OUT,
              metadata={"made_by": "benchmarks/toy/make_fixture.py", "source": os.path.basename(src)})
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1e6:.1f} MB) from {src}")


if __name__ == "__main__":
    main()
