"""Llama 3.2 1B Instruct (Meta): the 1.2B-parameter Llama 3.2 decoder (`model_type = "llama"`),
the base that Korean instruction models such as Bllossom's build on; Meta lists 8 official
languages, Korean not among them, so compare it on Korean data rather than assume.

Where the numbers come from (the hub itself is not reachable here): meta-llama/
Llama-3.2-1B-Instruct's config.json as copied, with its `_commit_hash`
4e20de362430cd3b72f300e6b0f18e50e7166e08, in kevinstephano/thunder_model_blocks
(hf_llama/llama_config.py): vocab 128,256, hidden 2,048, FFN 8,192, 16 layers, 32 heads, 8
key/value heads, head_dim 64, 131,072 positions, rope_theta 500,000 with llama3 scaling (factor
32, low/high frequency factors 1 and 4, 8,192 original positions), no biases, tied embeddings.
Other public copies (silvaxxx1/MyLLM_101, models/LLAMA/Llama3.2/Llama_configs.py) give the
same sizes.

Kakao's Kanana 1.5 (2.1B) and NAVER's HyperCLOVAX SEED 0.5B are Llama-architecture Korean
models too, but their config.json numbers could not be confirmed from a source here, so they
are not registered. Classification puts a fresh `score` layer on the last real token; Llama 3
has no pad token, so the end-of-sequence token pads, on the right.
"""

import zoo

ARCHITECTURE = {
    "model_type": "llama",
    "vocab_size": 128_256,
    "hidden_size": 2_048,
    "intermediate_size": 8_192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "max_position_embeddings": 131_072,
    "rope_theta": 500_000.0,
    "rope_scaling": {
        "factor": 32.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8_192,
        "rope_type": "llama3",
    },
    "rms_norm_eps": 1e-5,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "tie_word_embeddings": True,
    "bos_token_id": 128_000,
    "eos_token_id": 128_001,
}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="llama-3.2-1b",
            description="Llama-3.2-1B-Instruct (Meta): small Llama 3 decoder, new head",
            source=zoo.HubSource(repo_id="meta-llama/Llama-3.2-1B-Instruct"),
            family="llama",
            tokenizer=zoo.TokenizerSettings(
                max_length=256, pad_token="eos", padding_side="right", token_type_ids=False
            ),
            resources=zoo.Resources(
                architecture=ARCHITECTURE,
                methods=("full", "lora", "qlora", "zero-shot", "few-shot"),
                lora_targets=("q_proj", "v_proj"),
                default_precision="auto",
            ),
            defaults={"learning_rate": 1e-4, "batch_size": 8, "gradient_accumulation_steps": 2},
        )
    )
