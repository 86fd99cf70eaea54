"""Write the tiny T5 tokenizer shipped beside this file (``T5TextEncoder.tiny``): a 128-piece Unigram model
trained on a few English sentences, with T5's special tokens (<pad> 0, </s> 1, <unk> 2) and T5's "append </s>".

    python opensora_lite/models/tiny_t5/make_tokenizer.py
"""
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import T5Tokenizer

SENTENCES = [
    "a red panda eating bamboo in a forest", "a circle moving left", "a square moving right, then up",
    "the quick brown fox jumps over the lazy dog", "a drone shot of waves on a beach at sunset",
    "a cat playing with a ball of yarn", "timelapse of clouds over a city skyline at night",
    "aesthetic score: 6.5. motion score: 4.0.",
]


def main() -> None:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=128, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    tok.train_from_iterator(SENTENCES * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", tok.token_to_id("</s>"))])
    T5Tokenizer(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                extra_ids=0).save_pretrained(Path(__file__).parent)


if __name__ == "__main__":
    main()
