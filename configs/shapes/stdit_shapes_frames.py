# Work in progress (docs/conditioning.md, docs/shapes_model.md): the shapes STDiT trained with frame masks on
# 17-frame clips (frame 0 alone in latent frame 0), so that one set of weights also animates a first frame,
# continues clips and makes long videos window by window. Its weights (weights/shapes/frames/) are the shipped
# model fine-tuned for 1,500 steps (configs/shapes/stdit_shapes_finetune.py) on a VAE whose temporal half was
# fine-tuned for 300 steps on 17-frame clips:
#   python tools/train_vae.py configs/shapes/vae_shapes_temporal.py --vae_init weights/shapes/vae.safetensors \
#       --num_frames 17 --dataset.num_frames 17 --vae_train.max_steps 300 --vae_train.lr 3e-4 \
#       --vae_train.warmup_steps 50
# They are not good enough to ship yet (tools/eval.py: eval_results/frames/results.json).
#   python tools/inference.py configs/shapes/stdit_shapes_frames.py --class square-left --first-frame start.png
#   python tools/inference.py configs/shapes/stdit_shapes_frames.py --class 5 --extend clip.mp4 --frames 48
_base_ = ["./vae_shapes.py"]

num_frames = 17
dataset = dict(num_frames=num_frames)

num_classes = 12
class_names = "shapes"  # --class takes these names (opensora_lite/data/class_names.py)

model = dict(
    type="STDiT",
    input_size=(9, 8, 8),  # latent (T', H', W') of 17 frames at 64x64; positions follow the real input
    patch_size=(1, 2, 2),
    in_channels=4,
    hidden_size=128,
    depth=6,
    num_heads=4,
    mlp_ratio=4.0,
    class_dropout_prob=0.1,
    num_classes=num_classes,
    learn_sigma=False,
)

scheduler = dict(
    type="rflow",
    num_sampling_steps=25,
    cfg_scale=3.0,
    # Uniform t, not logit-normal: in these sparse high-contrast latents the shape still shows at t = 0.9
    # and the direction of motion is settled above it, where logit-normal(0, 1) draws 1.4% of its t.
    # benchmarks/shapes_recipe.py: logit-normal 71% judged accuracy at 6,000 steps, uniform 96%.
    sample_method="uniform",
)

train = dict(
    outputs="runs/stdit_shapes",
    plugin="ddp",
    precision="fp32",
    seed=0,
    batch_size=32,
    max_steps=6000,
    lr=6e-4,
    warmup_steps=200,
    grad_clip=1.0,
    ema_decay=0.999,
    ckpt_every=250,
    log_every=50,
    # Every clip of `dataset` is encoded once by the VAE into this file, then training reads latents.
    latent_cache="data/shapes/latents.safetensors",
    # Which latent frames are given (clean, no loss): one model for every mode (engine/frame_masks.py).
    # first = image-to-video, first_k = continuation and each window of a long video.
    frame_mask=dict(none=0.4, first=0.25, first_k=0.25, last_k=0.1, max_k=7),
)

ckpt = dict(model="weights/shapes/frames/stdit.safetensors", vae="weights/shapes/frames/vae.safetensors")

# Long and continued clips are made in windows of 17 frames, each given the last 9 frames made (5 latent
# frames) and adding 8; every window is aligned: 1 + 8 x 2 frames (engine/frame_plan.py).
inference = dict(num_frames=16, fps=8, window=dict(frames=17, overlap=9, aligned=True))
