"""The text encoder of text-to-video models: T5 (Open-Sora 1.2's ``DeepFloyd/t5-v1_1-xxl``) from a local folder.

    encoder = T5TextEncoder("weights/t5-v1_1-xxl", model_max_length=300)
    cond = encoder.encode(["a red panda eating bamboo"])   # {"y": (N, 1, 300, 4096), "y_mask": (N, 300) bool}

Prompts are padded to ``model_max_length`` and carry their token mask, exactly as Open-Sora's ``T5Embedder``.
T5-XXL has 4.7 B parameters: it is loaded in bf16 on the first :meth:`encode` and, unless ``keep_loaded``,
freed after it, so it never sits in memory beside the transformer while that runs. ``transformers`` is imported
only here (``pip install 'opensora-lite[text]'``).

:meth:`T5TextEncoder.tiny` is a random 1-layer T5 with a 4 KB tokenizer shipped in the package: it makes the
full-size pipeline runnable with ``--random-init`` and lets tests run without the 19 GB of T5-XXL.
"""
import logging
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..errors import CheckpointError, ConfigError, UserError
from ..registry import MODELS

logger = logging.getLogger(__name__)

TINY_TOKENIZER = Path(__file__).parent / "tiny_t5"  # tokenizer.json + tokenizer_config.json, a few KB
TEXT_INSTALL = "pip install 'opensora-lite[text]' (transformers, sentencepiece, protobuf)"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# A T5 folder in Hugging Face's layout has its config, a tokenizer (SentencePiece or tokenizers' JSON) and weights.
TOKENIZER_FILES = ("spiece.model", "tokenizer.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise UserError(f"text-to-video needs transformers: {TEXT_INSTALL}") from None
    return transformers


def check_t5_folder(folder) -> Path:
    """The folder, or a one-line error that names the missing file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"T5 folder not found: {folder} (text_encoder.from_pretrained); download "
                              f"DeepFloyd/t5-v1_1-xxl there (README, 'Pretrained models'), or use --random-init")
    for what, names in (("config", ("config.json",)), ("tokenizer", TOKENIZER_FILES), ("weights", WEIGHT_FILES)):
        if not any((folder / name).is_file() for name in names):
            raise CheckpointError(f"T5 folder {folder} has no {what} file ({' or '.join(names)})")
    return folder


@MODELS.register_module("t5")
class T5TextEncoder:
    """Prompts -> the ``cond`` of a text model: ``{"y": (N, 1, L, C) float32, "y_mask": (N, L) bool}``.

    Args:
        from_pretrained: a local folder in the layout of ``DeepFloyd/t5-v1_1-xxl``.
        model_max_length: every prompt is padded (or truncated) to this many tokens (300 for Open-Sora 1.2).
        dtype: "bf16" (default, as Open-Sora), "fp16" or "fp32".
        keep_loaded: keep T5 in memory between calls instead of freeing it after each.
    """

    def __init__(self, from_pretrained: Optional[str] = None, model_max_length: int = 300, dtype: str = "bf16",
                 keep_loaded: bool = False):
        if dtype not in DTYPES:
            raise ConfigError(f"text_encoder.dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if not isinstance(model_max_length, int) or model_max_length < 1:
            raise ConfigError(f"text_encoder.model_max_length must be a positive int, got {model_max_length!r}")
        self.from_pretrained = from_pretrained
        self.model_max_length = model_max_length
        self.dtype = DTYPES[dtype]
        self.keep_loaded = keep_loaded
        self.device = torch.device("cpu")
        self._tokenizer = None
        self._model = None

    @classmethod
    def tiny(cls, caption_channels: int, model_max_length: int = 300, seed: int = 0) -> "T5TextEncoder":
        """A random 1-layer T5 of width ``caption_channels`` with the shipped tiny tokenizer (smoke runs, tests)."""
        transformers = _transformers()
        encoder = cls(None, model_max_length, dtype="fp32", keep_loaded=True)
        encoder._tokenizer = transformers.AutoTokenizer.from_pretrained(TINY_TOKENIZER)
        config = transformers.T5Config(vocab_size=len(encoder._tokenizer), d_model=caption_channels, d_kv=8,
                                       d_ff=32, num_layers=1, num_heads=2, feed_forward_proj="gated-gelu")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            encoder._model = transformers.T5EncoderModel(config).eval()
        return encoder

    @property
    def output_dim(self) -> int:
        """The width C of the tokens (the model's ``caption_channels``)."""
        self._load()
        return self._model.config.d_model

    def to(self, device) -> "T5TextEncoder":
        self.device = torch.device(device)
        if self._model is not None:
            self._model.to(self.device)
        return self

    def _load(self) -> None:
        if self._model is not None:
            return
        transformers = _transformers()
        folder = check_t5_folder(self.from_pretrained)
        logger.info("loading T5 from %s (%s)", folder, self.dtype)
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        major, minor = (int(v) for v in transformers.__version__.split(".")[:2])
        dtype = {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": self.dtype}  # renamed in 4.56
        self._model = transformers.T5EncoderModel.from_pretrained(folder, **dtype).eval().to(self.device)

    def free(self) -> None:
        """Drop T5's weights (they are loaded again on the next :meth:`encode`); a tiny model stays."""
        if self.from_pretrained is not None:
            self._model = None

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and mask, each (N, model_max_length): padded to the length, truncated beyond it."""
        self._load()
        lengths = [len(ids) for ids in self._tokenizer(list(prompts), add_special_tokens=True)["input_ids"]]
        for prompt, length in zip(prompts, lengths):
            if length > self.model_max_length:  # as Open-Sora: the end of the prompt is cut, with a warning here
                logger.warning("prompt of %d tokens truncated to %d (model_max_length): %.60s...", length,
                               self.model_max_length, prompt)
        batch = self._tokenizer(list(prompts), max_length=self.model_max_length, padding="max_length",
                                truncation=True, return_attention_mask=True, add_special_tokens=True,
                                return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"].bool()

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> dict:
        """``{"y": (N, 1, L, C) float32, "y_mask": (N, L) bool}`` of N prompts (L = model_max_length)."""
        if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise UserError(f"prompts must be a non-empty list of strings, got {prompts!r}")
        ids, mask = self.tokenize(prompts)
        hidden = self._model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device).long())
        y = hidden["last_hidden_state"].float()[:, None]  # (N, 1, L, C)
        if not self.keep_loaded:
            self.free()
        return {"y": y, "y_mask": mask.to(y.device)}


def append_scores(prompts: Sequence[str], aes: Optional[float] = None) -> list:
    """Open-Sora 1.2's prompt suffix: `` aesthetic score: 6.5.`` (its models were trained with it; the released
    inference config asks for 6.5). Prompts that already name a score are kept as they are."""
    if aes is None:
        return list(prompts)
    return [p if "aesthetic score:" in p else f"{p} aesthetic score: {aes:.1f}." for p in prompts]


@MODELS.register_module("t5-tiny")
def t5_tiny(caption_channels: int = 32, model_max_length: int = 300, seed: int = 0) -> T5TextEncoder:
    """A config entry for :meth:`T5TextEncoder.tiny`: a random T5 for smoke runs and tests (nothing to download)."""
    return T5TextEncoder.tiny(caption_channels, model_max_length, seed)
