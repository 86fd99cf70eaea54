# Work in progress (docs/conditioning.md, docs/shapes_model.md): the shapes STDiT trained with frame masks on
# 17-frame clips (frame 0 alone in latent frame 0), so that one set of weights also animates a first frame,
# continues clips and makes long videos window by window. Its weights (weights/shapes/frames/) are the shipped
# model fine-tuned for 1,500 steps (configs/shapes/stdit_shapes_finetune.py), 3,000 more with more
# conditioned clips (configs/shapes/stdit_shapes_finetune_more.py) and 5,000 more with exit windows
# (configs/shapes/stdit_shapes_finetune_exit.py), on a VAE whose temporal half was fine-tuned for 300 steps on
# 17-frame clips:
#   python tools/train_vae.py configs/shapes/vae_shapes_temporal.py --vae_init weights/shapes/vae.safetensors \
#       --num_frames 17 --dataset.num_frames 17 --vae_train.max_steps 300 --vae_train.lr 3e-4 \
#       --vae_train.warmup_steps 50 --vae_train.outputs runs/vae_shapes_temporal_17
# and whose decoders were then fine-tuned on shapes crossing the border (configs/shapes/vae_shapes_frames_decoder.py).
# They are not good enough to ship yet (tools/eval.py: eval_results/frames/results.json).
#   python tools/generate.py configs/shapes/stdit_shapes_frames.py --class square-left --first-frame start.png
#   python tools/generate.py configs/shapes/stdit_shapes_frames.py --class 5 --extend clip.mp4 --frames 48
_base_ = ["./stdit_shapes.py"]

num_frames = 17
dataset = dict(num_frames=num_frames)

model = dict(input_size=(9, 8, 8))  # latent (T', H', W') of 17 frames at 64x64; positions follow the real input

train = dict(
    outputs="runs/stdit_shapes_frames",
    latent_cache="data/shapes/latents_17.safetensors",
    # Which latent frames are given (clean, no loss): one model for every mode (training/frame_masks.py).
    # first = image-to-video, first_k = continuation and each window of a long video.
    frame_mask=dict(none=0.4, first=0.25, first_k=0.25, last_k=0.1, max_k=7),
)

ckpt = dict(model="weights/shapes/frames/stdit.safetensors", vae="weights/shapes/frames/vae.safetensors")

# Long and continued clips are made in windows of 17 frames, each given the last 9 frames made (5 latent
# frames) and adding 8; every window is aligned: 1 + 8 x 2 frames (inference/frame_plan.py).
inference = dict(num_frames=16, fps=8, window=dict(frames=17, overlap=9, aligned=True))
