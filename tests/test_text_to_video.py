"""Text-to-video (Open-Sora 1.2): the T5 encoder from a folder, prompts through the pipeline and the CLI."""
import io
import json

import pytest
import torch

from opensora_lite.errors import CheckpointError, UserError
from opensora_lite.models.text_encoder import T5TextEncoder, append_scores

from helpers import ROOT, run

TOOL = "generate"
T2V = str(ROOT / "configs/opensora/t2v_v1_2.py")
# A small STDiT3 and VAE of the same kinds, so the full pipeline runs in seconds with --random-init.
SMALL = ["--random-init", "--model.depth", "1", "--model.hidden_size", "64", "--model.num_heads", "4",
         "--model.caption_channels", "32", "--vae.vae_2d.config.block_out_channels", "(8, 8, 8, 8)",
         "--vae.vae_2d.config.norm_num_groups", "4", "--vae.vae_2d.config.layers_per_block", "1",
         "--vae.vae_temporal.filters", "8", "--vae.vae_temporal.num_groups", "4",
         "--vae.vae_temporal.num_res_blocks", "1", "--steps", "2", "--no-progress"]


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    """A T5 folder in DeepFloyd/t5-v1_1-xxl's layout: config.json, a SentencePiece spiece.model trained here,
    tokenizer_config.json and random weights."""
    spm = pytest.importorskip("sentencepiece")
    from transformers import T5Config, T5EncoderModel

    folder = tmp_path_factory.mktemp("t5")
    model = io.BytesIO()
    text = ["a red panda eating bamboo", "a circle moving left", "waves on a beach at sunset"] * 50
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=model, vocab_size=40,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   hard_vocab_limit=False, minloglevel=2)
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "pad_token": "<pad>", "eos_token": "</s>",
         "unk_token": "<unk>", "model_max_length": 512}))
    torch.manual_seed(0)
    config = T5Config(vocab_size=40, d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                      feed_forward_proj="gated-gelu")
    T5EncoderModel(config).save_pretrained(folder)
    return folder


def test_prompts_are_padded_to_the_length_and_masked(t5_folder):
    encoder = T5TextEncoder(str(t5_folder), model_max_length=32, dtype="fp32")
    ids, mask = encoder.tokenize(["a red panda", "a red panda eating bamboo on a beach at sunset " * 3])
    assert ids.shape == mask.shape == (2, 32)
    short = int(mask[0].sum())
    assert 2 < short < 32 and bool(mask[0, :short].all()) and not bool(mask[0, short:].any())  # a prefix mask
    assert int(ids[0, short - 1]) == 1 and bool((ids[0, short:] == 0).all())  # </s>, then <pad>
    assert bool(mask[1].all())  # truncated to the length


def test_a_prompt_longer_than_the_maximum_is_truncated_with_a_warning(t5_folder, caplog):
    encoder = T5TextEncoder(str(t5_folder), model_max_length=8, dtype="fp32")
    with caplog.at_level("WARNING"):
        ids, mask = encoder.tokenize(["a red panda eating bamboo on a beach", "a"])
    assert ids.shape == (2, 8) and bool(mask[0].all())
    assert len(caplog.records) == 1 and "truncated to 8" in caplog.records[0].getMessage()


def test_encode_gives_tokens_and_frees_t5(t5_folder):
    encoder = T5TextEncoder(str(t5_folder), model_max_length=12, dtype="bf16")
    cond = encoder.encode(["a red panda", "waves"])
    assert cond["y"].shape == (2, 1, 12, 32) and cond["y"].dtype == torch.float32
    assert cond["y_mask"].dtype == torch.bool and cond["y_mask"].shape == (2, 12)
    assert encoder._model is None  # freed: never beside the transformer while it runs
    again = encoder.encode(["a red panda", "waves"])  # loaded again on demand
    torch.testing.assert_close(again["y"], cond["y"])
    assert not torch.allclose(cond["y"][0], cond["y"][1])


def test_a_missing_t5_file_is_one_line(t5_folder, tmp_path):
    with pytest.raises(CheckpointError, match="T5 folder not found"):
        T5TextEncoder(str(tmp_path / "nothing")).encode(["a"])
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"no tokenizer file \(spiece.model or tokenizer.json\)"):
        T5TextEncoder(str(tmp_path / "t5")).encode(["a"])


def test_aesthetic_score_suffix():
    assert append_scores(["a cat"], 6.5) == ["a cat aesthetic score: 6.5."]
    assert append_scores(["a cat aesthetic score: 5.0."], 6.5) == ["a cat aesthetic score: 5.0."]
    assert append_scores(["a cat"], None) == ["a cat"]


def test_cli_text_to_video_end_to_end(tool, capsys, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("waves on a beach\n\n")
    code, out, err = run(tool, capsys, T2V, *SMALL, "--prompt", "a red panda eating bamboo", "--prompt-file",
                         str(prompts), "--resolution", "144p", "--aspect-ratio", "1:1", "--frames", "17",
                         "--save-dir", str(tmp_path / "out"))
    assert code == 0, err
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert made == ["a-red-panda-eating-bamboo-0.mp4", "grid-0.png", "waves-on-a-beach-0.mp4"]
    assert "2 video(s) of 17 frames" in out


@pytest.mark.parametrize("argv, message", [
    ([], "is a text-to-video model: give --prompt"),
    (["--class", "3"], "takes --prompt, not classes"),
    (["--prompt", "a", "--size", "64", "64", "--resolution", "144p"], "not both"),
    (["--prompt", "a", "--resolution", "96p"], "unknown resolution '96p'"),
    (["--prompt", "a", "--resolution", "144p", "--aspect-ratio", "4:5"], "unknown aspect ratio '4:5'"),
    (["--prompt", "a", "--size", "60", "64"], "nearest size is (64, 64)"),
    (["--prompt", "a", "--aes", "high"], "--aes must be a number"),
    (["--prompt-file", "/nonexistent/prompts.txt"], "no such file"),
    (["--prompt", "  "], "is a text-to-video model: give --prompt"),
])
def test_cli_bad_text_requests_are_one_line(tool, capsys, argv, message):
    code, _, err = run(tool, capsys, T2V, *SMALL, *argv)
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_missing_weights_and_t5_folder_are_one_line(tool, capsys):
    code, _, err = run(tool, capsys, T2V, "--prompt", "a red panda")
    assert code == 2 and len(err) == 1
    assert "missing weights/t5-v1_1-xxl (text_encoder.from_pretrained)" in err[0]
    assert "huggingface-cli download DeepFloyd/t5-v1_1-xxl" in err[0]


def test_class_models_refuse_prompts(tool, capsys):
    code, _, err = run(tool, capsys, str(ROOT / "configs/shapes/stdit_shapes.py"), "--prompt", "a circle")
    assert code == 2 and "takes --class, not --prompt" in err[0]


def test_the_pipeline_takes_prompts_and_sizes():
    from opensora_lite.config import load_config
    from opensora_lite.inference.pipeline import VideoPipeline

    cfg = load_config(T2V, {"model.depth": 1, "model.hidden_size": 64, "model.num_heads": 4,
                            "model.caption_channels": 32, "vae.vae_2d.config.block_out_channels": (8, 8, 8, 8),
                            "vae.vae_2d.config.norm_num_groups": 4, "vae.vae_2d.config.layers_per_block": 1,
                            "vae.vae_temporal.filters": 8, "vae.vae_temporal.num_groups": 4,
                            "vae.vae_temporal.num_res_blocks": 1})
    pipe = VideoPipeline.from_loaded_config(cfg, T2V, random_init=True)
    assert pipe.image_size == (240, 424)  # 240p 9:16 is 240x426; the VAE's 8-pixel grid makes 424
    out = pipe(prompts=["a cat"], num_frames=1, steps=1, size=(64, 96), progress=False)
    assert out.videos.shape == (1, 3, 1, 64, 96) and out.names == ["a cat"]
    with pytest.raises(UserError, match="takes prompts, not classes"):
        pipe(classes=[1], prompts=["a"])
    with pytest.raises(UserError, match="pass prompts"):
        pipe()


##################################################################################
#                              Training with captions                              #
##################################################################################


def write_text_config(tmp_path, outputs, cache, **train):
    """A tiny Open-Sora-1.2-style text model (STDiT3 options) on a captioned latent cache, with a tiny T5."""
    settings = dict(outputs=str(outputs), plugin="ddp", precision="fp32", seed=0, batch_size=8, max_steps=6,
                    lr=1e-3, warmup_steps=2, grad_clip=1.0, ema_decay=0.9, ckpt_every=2, log_every=2,
                    frame_mask=dict(none=0.5, first=0.5), text_cache=str(tmp_path / "text.safetensors"))
    settings.update(train)
    path = tmp_path / "tiny_text_train.py"
    from opensora_lite.models.stdit import OPENSORA_V1_2

    model = dict(type="STDiT", input_size=(2, 4, 4), patch_size=(1, 2, 2), in_channels=4, hidden_size=32, depth=1,
                 num_heads=2, **dict(OPENSORA_V1_2, caption_channels=32, model_max_length=16, learn_sigma=False))
    path.write_text(f"""
model = {model!r}
text_encoder = dict(type="t5-tiny", caption_channels=32, model_max_length=16)
image_size = (32, 32)
scheduler = dict(type="rflow", sample_method="logit-normal", num_sampling_steps=4, cfg_scale=2.0)
dataset = dict(type="LatentCacheDataset", cache_path={str(cache)!r})
train = {settings!r}
""")
    return path


@pytest.fixture(scope="module")
def captioned_cache(tmp_path_factory):
    """Latents whose mean depends on the caption ("a circle moving left", ...), captions in the cache."""
    from safetensors.torch import save_file

    words = ["a circle moving left", "a square moving up", "a triangle moving right"]
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(24) % 3
    latents = torch.randn(24, 4, 2, 4, 4, generator=gen) * 0.5 + labels.view(-1, 1, 1, 1, 1).float() - 1
    path = tmp_path_factory.mktemp("captioned") / "latents.safetensors"
    save_file({"latents": latents, "labels": torch.zeros(24, dtype=torch.long)}, str(path),
              metadata={"meta": "{}", "captions": json.dumps([words[int(i)] for i in labels])})
    return path


def test_a_text_model_learns_its_captions(tmp_path, captioned_cache):
    from helpers import losses, run_train

    config = write_text_config(tmp_path, tmp_path / "run", captioned_cache, max_steps=80, lr=3e-3, ckpt_every=80,
                               log_every=80)
    run_train(config)
    curve = losses(tmp_path / "run")
    first, last = sum(curve[s] for s in range(1, 11)) / 10, sum(curve[s] for s in range(71, 81)) / 10
    assert last < 0.75 * first, (first, last)
    assert (tmp_path / "text.safetensors").is_file()  # each distinct caption encoded once, then read


def test_text_training_resumes_exactly(tmp_path, captioned_cache):
    from helpers import losses, run_train

    straight = write_text_config(tmp_path, tmp_path / "straight", captioned_cache)
    run_train(straight)
    run_train(write_text_config(tmp_path, tmp_path / "cut", captioned_cache, max_steps=4))
    run_train(write_text_config(tmp_path, tmp_path / "more", captioned_cache), "--resume",
              str(tmp_path / "cut/checkpoints/step_00000004"))  # steps 5 and 6 from the step-4 checkpoint
    want = losses(tmp_path / "straight")
    assert losses(tmp_path / "cut") == {s: want[s] for s in range(1, 5)}
    assert losses(tmp_path / "more") == {5: want[5], 6: want[6]}


def test_training_a_text_model_needs_captions(tmp_path):
    from helpers import run_train, write_latent_cache

    cache = write_latent_cache(tmp_path / "plain.safetensors")
    result = run_train(write_text_config(tmp_path, tmp_path / "run", cache), check=False)
    assert result.returncode == 2 and "has no 'text' column" in result.stderr


@pytest.mark.slow
def test_text_training_on_two_processes_matches_one(tmp_path, captioned_cache):
    from helpers import losses, run_train

    run_train(write_text_config(tmp_path, tmp_path / "one", captioned_cache))
    run_train(write_text_config(tmp_path, tmp_path / "two", captioned_cache), nproc=2)
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(two) == sorted(one) == list(range(1, 7))
    for step in one:
        assert two[step] == pytest.approx(one[step], abs=1e-5), step
