# Open-Sora 1.2 text-to-video (hpcaitech/Open-Sora v1.2.0, configs/opensora-v1-2/inference/sample.py): STDiT3-XL/2
# (1.1 B) on the v1.2 VAE, T5-XXL prompts, rectified flow with the resolution- and length-dependent time shift,
# 30 Euler steps, guidance 7.0.
#   opensora-lite generate configs/opensora/t2v_v1_2.py --prompt "a red panda eating bamboo" \
#       --resolution 240p --aspect-ratio 9:16 --frames 51
# Weights (downloaded by hand; README, "Pretrained models"): the paths below, or --ckpt / --vae-ckpt.
# --random-init runs the whole pipeline with random weights and a tiny T5 (smoke runs, benchmarks).
_base_ = ["../vae/opensora_v1_2.py"]

# Open-Sora's presets (opensora_lite/aspect.py): 144p 240p 360p 480p 720p 1080p, aspect ratios named
# height:width (9:16 is landscape, 240x426 at 240p); frame counts 51 (2 s at 24 fps), 102, 204, 408 or 1 (an image)
resolution = "240p"
aspect_ratio = "9:16"
num_frames = 51

model = dict(type="STDiT3-XL/2", input_size=(15, 30, 53))  # latent (T', H', W') of 51 frames at 240x426
text_encoder = dict(type="t5", from_pretrained="weights/t5-v1_1-xxl", model_max_length=300, dtype="bf16")
scheduler = dict(type="rflow", use_timestep_transform=True, num_sampling_steps=30, cfg_scale=7.0)

ckpt = dict(model="weights/OpenSora-STDiT-v3", vae="weights/OpenSora-VAE-v1.2/model.safetensors")

# aes: the " aesthetic score: 6.5." that Open-Sora appends to every prompt (its models were trained with
# scores in the captions; None leaves prompts as written). Long videos are made window by window, each given
# the last 5 latent frames (17 frames) of the previous one, as Open-Sora's loop.
inference = dict(num_frames=num_frames, fps=24, aes=6.5, window=dict(frames=51, overlap=17, aligned=True))

# What each file is and where it comes from (a missing one is one line naming it).
file_notes = {
    "ckpt.model": "Open-Sora 1.2's STDiT3-XL/2, the Hugging Face folder hpcai-tech/OpenSora-STDiT-v3 (config.json + "
                  "model.safetensors), e.g. `huggingface-cli download hpcai-tech/OpenSora-STDiT-v3 --local-dir "
                  "weights/OpenSora-STDiT-v3`",
    "ckpt.vae": "Open-Sora 1.2's VAE, model.safetensors of hpcai-tech/OpenSora-VAE-v1.2",
    "text_encoder.from_pretrained": "T5-XXL, the folder DeepFloyd/t5-v1_1-xxl (config.json, spiece.model, the "
                                    "weights), e.g. `huggingface-cli download DeepFloyd/t5-v1_1-xxl --local-dir "
                                    "weights/t5-v1_1-xxl`",
}
