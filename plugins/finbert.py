"""KR-FinBert-SC (snunlp): a Korean BERT (KR-BERT-MEDIUM, 20,000-piece character-level WordPiece
vocabulary) fine-tuned for financial sentiment. Its 3-class head is replaced by a fresh one.

Defaults follow its model card (learning rate 5e-5) and the original help-desk project
(max length 200, batch 32); that project's tuned runs did better with 3e-5 on small data.
"""

import zoo

ARCHITECTURE = {
    "model_type": "bert",
    "vocab_size": 20_000,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3_072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="finbert",
            description="KR-FinBert-SC: Korean BERT-base (financial sentiment), new head",
            source=zoo.HubSource(repo_id="snunlp/KR-FinBert-SC"),
            family="bert",
            tokenizer=zoo.TokenizerSettings(max_length=200),
            resources=zoo.Resources(
                architecture=ARCHITECTURE,
                methods=("full", "lora"),
                lora_targets=("query", "value"),
            ),
            defaults={"learning_rate": 5e-5, "batch_size": 32},
        )
    )
