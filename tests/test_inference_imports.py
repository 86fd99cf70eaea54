"""The inference path imports only what inference needs (issue #17: a fast first video).

A fresh interpreter imports what ``tools/generate.py`` imports, builds the shipped shapes pipeline
(random weights: this is about imports, not weights), samples one short clip and decodes it; then the
heavy packages that inference never uses must not be in ``sys.modules``.
"""
import json
import subprocess
import sys

from helpers import ROOT

CONFIG = "configs/shapes/stdit_shapes.py"
# Training, evaluation, diffusers (the 2-D VAE is our own module), torch's compiler and the web demo's Gradio:
# seconds of imports that sampling never uses.
NOT_ON_THE_INFERENCE_PATH = ("colossalai", "transformers", "peft", "bitsandbytes", "torchmetrics", "diffusers",
                             "torch._dynamo", "gradio", "opensora_lite.demo")

CHILD = f"""
import json, sys
import opensora_lite.commands.generate  # what tools/generate.py imports
from opensora_lite.inference.pipeline import VideoPipeline

pipe = VideoPipeline.from_config({CONFIG!r}, random_init=True)
out = pipe(classes=[1], num_frames=1, seed=0, steps=1, progress=False)
assert out.videos.shape[2] == 1
print(json.dumps(sorted(sys.modules)))
"""


def test_inference_imports_no_heavy_packages():
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "opensora_lite.models.vae.autoencoder_kl" in loaded  # the VAE came from the project's own module
    heavy = sorted({name for name in loaded for root in NOT_ON_THE_INFERENCE_PATH
                    if name == root or name.startswith(root + ".")})
    assert heavy == [], f"the inference path imports {heavy}"
