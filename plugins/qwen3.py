"""Qwen3 (Alibaba): dense multilingual instruction decoders (119 languages, Korean among them),
0.6B and 1.7B parameters, on the Llama memory family (`model_type = "qwen3"`: Llama's layer with
a per-head RMSNorm on queries and keys, and an explicit head_dim of 128).

Where the numbers come from (the hub itself is not reachable here): Qwen/Qwen3-0.6B's
config.json (https://huggingface.co/Qwen/Qwen3-0.6B/raw/main/config.json), as quoted in public
notes on GitHub (the `code` corpus of this project's search tool: a copy of the JSON with
attention_bias false, attention_dropout 0.0, head_dim 128, hidden_size 1,024, intermediate_size
3,072, max_position_embeddings 40,960, 16 heads, 28 layers, 8 key/value heads, rope_theta
1,000,000, tie_word_embeddings true, and a table that adds vocab_size 151,936). Qwen3-1.7B: the
Megatron arguments in zyzshishui/slime (scripts/models/qwen3-1.7B.sh: 28 layers, hidden 2,048, FFN
6,144, 16 heads, 8 query groups, kv-channels 128, vocab 151,936, no linear biases, qk-layernorm)
and a public table of the Qwen3 configs (same heads, tied embeddings, 40,960 positions). The
counts agree with the model cards: 0.6B total and 0.44B without embeddings, 1.7B and 1.4B.

Both tie the LM head to the word embeddings. Classification puts a fresh `score` layer on the
last real token (Qwen3ForSequenceClassification finds it from `config.pad_token_id`, which the
loader sets); the end-of-sequence token pads, on the right.
"""

import zoo


def architecture(hidden: int, ffn: int) -> dict:
    return {
        "model_type": "qwen3",
        "vocab_size": 151_936,
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 40_960,
        "rope_theta": 1_000_000,
        "rms_norm_eps": 1e-6,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": True,
    }


SIZES = {
    "0.6b": architecture(hidden=1_024, ffn=3_072),
    "1.7b": architecture(hidden=2_048, ffn=6_144),
}


@zoo.hookimpl
def register_models(register):
    for size, config in SIZES.items():
        register(
            zoo.ModelSpec(
                name=f"qwen3-{size}",
                description=f"Qwen3-{size.upper()}: multilingual decoder (Korean), new head",
                source=zoo.HubSource(repo_id=f"Qwen/Qwen3-{size.upper()}"),
                family="llama",
                tokenizer=zoo.TokenizerSettings(
                    max_length=256, pad_token="eos", padding_side="right", token_type_ids=False
                ),
                resources=zoo.Resources(
                    architecture=config,
                    methods=("full", "lora", "qlora", "zero-shot", "few-shot"),
                    lora_targets=("q_proj", "v_proj"),
                    default_precision="auto",
                ),
                defaults={"learning_rate": 1e-4, "batch_size": 8, "gradient_accumulation_steps": 2},
            )
        )
