"""Finding and loading a registered model for sequence classification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from zoo.engine.device import WeightsDtype
from zoo.errors import ModelUnavailableError, RunRefused, ZooError
from zoo.recipe import Attention
from zoo.spec import (
    HubSource,
    LocalSource,
    ModelSpec,
    NoWeights,
    ResolvedSource,
    TokenizerSettings,
)


@attrs.frozen(kw_only=True)
class LoadRequest:
    """Everything a loader needs: where the files are and what to classify."""

    spec: ModelSpec
    location: str  # a local directory or a hub repository id
    revision: str | None
    labels: tuple[str, ...]
    tokenizer: TokenizerSettings
    # Load the base weights in 4-bit NF4 with double quantisation (QLoRA; CUDA only).
    quantize_4bit: bool = False
    allow_pickle: bool = False
    trust_remote_code: bool = False
    # The dtype the weights load in (see `zoo.engine.device.weights_dtype`); left to itself,
    # transformers 5 would load the checkpoint's own dtype.
    dtype: WeightsDtype = "float32"
    # "sdpa": fused scaled-dot-product attention; "eager": softmax(QK^T)V, attention matrix kept.
    attention: Attention = "sdpa"


PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def weights_format(request: LoadRequest) -> dict[str, Any]:
    """from_pretrained options that load safetensors only, unless the recipe allows pickles.

    Pickled weights (pytorch_model.bin) can run arbitrary code when loaded.
    """
    folder = Path(request.location)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return {"use_safetensors": True} if folder.is_dir() else {}
    pickled = sorted(p.name for pattern in PICKLED for p in folder.glob(pattern))
    if pickled and not request.allow_pickle:
        raise RunRefused(
            f"{folder} holds only pickled weights ({', '.join(pickled[:3])}), which can run code "
            "when they are loaded",
            hint=f"convert them to safetensors, or set allow_pickle = true for "
            f"{request.spec.name!r} in the recipe if you trust these files",
        )
    return {"use_safetensors": False} if pickled else {}


def _from_hub(spec: ModelSpec, source: HubSource) -> str:
    """A local snapshot of the hub repository: the Hugging Face cache, else a download."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(source.repo_id, revision=source.revision, local_files_only=True)
    except LocalEntryNotFoundError:
        pass
    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the hub cannot be reached"
    message = (
        f"the weights of {spec.name!r} ({source.describe()}) are not on this machine: "
        f"not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {why}"
    )
    hint = (
        f"on a machine with internet, run 'hf download {source.repo_id} --local-dir DIR', "
        f'copy DIR here and set checkpoint = "DIR" for {spec.name!r} in the recipe '
        "(or copy that machine's Hugging Face cache into HF_HOME)"
    )
    if constants.HF_HUB_OFFLINE:
        raise ModelUnavailableError(message, hint=hint)
    try:
        return snapshot_download(
            source.repo_id,
            revision=source.revision,
            # safetensors only: pickled .bin weights can run code when loaded.
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"],
        )
    except (LocalEntryNotFoundError, HFValidationError, OSError) as exc:
        raise ModelUnavailableError(f"{message} ({type(exc).__name__})", hint=hint) from None


def locate(spec: ModelSpec, checkpoint: Path | None) -> tuple[str, str | None]:
    """Where to load the model from: the recipe's checkpoint override, else the spec's source.

    Returns a local directory, and the hub revision for hub sources. Raises
    `ModelUnavailableError` with what to do when the files are not on this machine.
    """
    if checkpoint is not None:
        if not checkpoint.is_dir():
            raise ModelUnavailableError(
                f"checkpoint for {spec.name!r} is not a directory: {checkpoint}",
                hint="point checkpoint at a folder with config.json and the weights",
            )
        return str(checkpoint), None
    source = spec.source
    if isinstance(source, HubSource):
        return _from_hub(spec, source), source.revision
    if isinstance(source, LocalSource):
        return locate(spec, source.path)
    if isinstance(source, ResolvedSource):
        return str(source.resolve()), None
    if isinstance(source, NoWeights):
        return "", None
    raise TypeError(f"unknown source type {type(source).__name__}")


def _quantization() -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def apply_tokenizer_settings(tokenizer: Any, settings: TokenizerSettings) -> None:
    tokenizer.padding_side = settings.padding_side
    if settings.pad_token == "eos":
        tokenizer.pad_token = tokenizer.eos_token


def model_options(request: LoadRequest) -> dict[str, Any]:
    """from_pretrained options for the request's weights dtype and attention."""
    import torch

    return {"dtype": getattr(torch, request.dtype), "attn_implementation": request.attention}


def unsupported_attention(request: LoadRequest, exc: ValueError) -> ZooError | None:
    """What to say when the recipe asks (by default) for SDPA and the model's code has none."""
    if request.attention != "sdpa" or "scaled_dot_product_attention" not in str(exc):
        return None
    return ZooError(
        f"{request.spec.name!r} cannot use attention = 'sdpa': transformers has no "
        "scaled-dot-product attention for its architecture",
        hint=f"set attention = 'eager' for {request.spec.name!r} in the recipe (or in its "
        "plugin's defaults)",
    )


def load_for_classification(request: LoadRequest) -> tuple[Any, Any]:
    """zoo's standard loader: a tokenizer and AutoModelForSequenceClassification with a fresh
    head for the recipe's labels (any head the checkpoint had is replaced), in the request's
    weights dtype and attention implementation."""
    from transformers import AutoModelForSequenceClassification

    labels = request.labels
    return _load(
        request,
        AutoModelForSequenceClassification,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )


def load_causal_lm(request: LoadRequest) -> tuple[Any, Any]:
    """A decoder with its own LM head (head = "label-words"): AutoModelForCausalLM and its
    tokenizer, in the request's weights dtype and attention implementation."""
    from transformers import AutoModelForCausalLM

    return _load(request, AutoModelForCausalLM)


def _load(request: LoadRequest, auto_class: Any, **model_kwargs: Any) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    common: dict[str, Any] = {"revision": request.revision} if request.revision else {}
    if request.trust_remote_code:
        common["trust_remote_code"] = True
    options = {**common, **weights_format(request), **model_options(request)}
    if request.quantize_4bit:
        import torch

        options["quantization_config"] = _quantization()
        options["device_map"] = {"": torch.cuda.current_device()}
    try:
        tokenizer = AutoTokenizer.from_pretrained(request.location, **common)
        model = auto_class.from_pretrained(request.location, **model_kwargs, **options)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot load {request.spec.name!r} from {request.location}: {exc}",
            hint="point checkpoint at a complete model folder (config.json, weights, tokenizer)",
        ) from exc
    except ValueError as exc:
        problem = unsupported_attention(request, exc)
        if problem is None:
            raise
        raise problem from exc
    apply_tokenizer_settings(tokenizer, request.tokenizer)
    # GPT-style models have no pad token: the model must know which token pads.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_trained(model_dir: Path, *, causal_lm: bool = False) -> tuple[Any, Any]:
    """A model that zoo saved: a full model, or LoRA adapters (plus head) on their base model;
    `causal_lm`: a decoder with its LM head (head = "label-words")."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    auto_class = AutoModelForCausalLM if causal_lm else AutoModelForSequenceClassification
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not (model_dir / "adapter_config.json").exists():
        return auto_class.from_pretrained(model_dir), tokenizer
    from peft import PeftModel

    adapter = json.loads((model_dir / "adapter_config.json").read_text(encoding="utf-8"))
    # The labels live in the config saved beside the adapter, the weights in the base model.
    config = AutoConfig.from_pretrained(model_dir)
    base = auto_class.from_pretrained(adapter["base_model_name_or_path"], config=config)
    return PeftModel.from_pretrained(base, model_dir), tokenizer
