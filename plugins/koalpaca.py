"""KoAlpaca (beomi): Polyglot-ko (GPT-NeoX) instruction models, 5.8B and 12.8B parameters.

Classification puts a fresh linear head on the last token (GPTNeoXForSequenceClassification);
GPT-NeoX has no pad token, so the end-of-sequence token pads, on the tokenizer and in the model
config (batches of more than one row break otherwise). Full fine-tuning of 5.8B needs about
70 GB of GPU memory: use LoRA, or QLoRA (4-bit NF4 base, CUDA only) on a single 40 GB GPU.
`method = "zero-shot"` scores each label's likelihood after a KoAlpaca prompt, with no training;
`method = "few-shot"` does the same with `shots` training examples per class in the prompt.
The defaults suit LoRA; full fine-tuning wants a learning rate nearer 1e-5.
"""

import zoo


def architecture(hidden: int, layers: int, heads: int, ffn: int, rotary_pct: float) -> dict:
    return {
        "model_type": "gpt_neox",
        "vocab_size": 30_080,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "rotary_pct": rotary_pct,
        "max_position_embeddings": 2_048,
        "tie_word_embeddings": False,
    }


SIZES = {
    "5.8b": architecture(hidden=4_096, layers=28, heads=16, ffn=16_384, rotary_pct=0.25),
    "12.8b": architecture(hidden=5_120, layers=40, heads=40, ffn=20_480, rotary_pct=0.5),
}


@zoo.hookimpl
def register_models(register):
    for size, config in SIZES.items():
        register(
            zoo.ModelSpec(
                name=f"koalpaca-{size}",
                description=f"KoAlpaca-Polyglot-{size.upper()}: Korean GPT-NeoX instruction model",
                source=zoo.HubSource(repo_id=f"beomi/KoAlpaca-Polyglot-{size.upper()}"),
                family="gpt-neox",
                tokenizer=zoo.TokenizerSettings(
                    max_length=256, pad_token="eos", padding_side="right", token_type_ids=False
                ),
                resources=zoo.Resources(
                    architecture=config,
                    methods=("full", "lora", "qlora", "zero-shot", "few-shot"),
                    lora_targets=("query_key_value",),
                    default_precision="auto",
                ),
                defaults={"learning_rate": 1e-4, "batch_size": 4, "gradient_accumulation_steps": 4},
            )
        )
