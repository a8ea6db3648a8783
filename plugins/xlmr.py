"""The CLASSLA XLM-R base genre classifier: XLM-RoBERTa base (250,002-piece sentencepiece
vocabulary, reads Korean) fine-tuned on web genres. Its 9-genre head is replaced by a fresh one.
RoBERTa-family models must not be fed BERT-style token_type_ids.
"""

import zoo

ARCHITECTURE = {
    "model_type": "xlm-roberta",
    "vocab_size": 250_002,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3_072,
    "max_position_embeddings": 514,  # 512 positions after RoBERTa's padding offset of 2
    "type_vocab_size": 1,
}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="xlmr",
            description="XLM-R base genre classifier (classla): multilingual, new head",
            source=zoo.HubSource(
                repo_id="classla/xlm-roberta-base-multilingual-text-genre-classifier"
            ),
            family="xlm-roberta",
            tokenizer=zoo.TokenizerSettings(max_length=256, token_type_ids=False),
            resources=zoo.Resources(
                architecture=ARCHITECTURE,
                methods=("full", "lora"),
                lora_targets=("query", "value"),
            ),
            defaults={"learning_rate": 2e-5, "batch_size": 16},
        )
    )
