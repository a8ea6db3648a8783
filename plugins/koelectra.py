"""KoELECTRA v3 base discriminator (monologg): a Korean ELECTRA (35,000-piece WordPiece
vocabulary), fine-tuned here with ELECTRA's sequence-classification head (fresh).

Where the numbers come from (the hub itself is not reachable here): config.json of
monologg/koelectra-base-v3-discriminator as fine-tuned copies republish it with
"_name_or_path": "monologg/koelectra-base-v3-discriminator" (e.g.
huggingface.co/circulus/koelectra-polite-v1/blob/main/config.json,
huggingface.co/JoonJoon/koelectra-base-v3-discriminator-finetuned-ner/blob/main/config.json):
vocab 35,000, embedding size 768 (= hidden, so no embedding projection), hidden 768, 12 layers,
12 heads, FFN 3,072, 512 positions, type vocabulary 2; the KoELECTRA README's table agrees
(base discriminator: embedding 768, hidden 768, 12 heads; v3 vocabulary 35,000).
"""

import zoo

ARCHITECTURE = {
    "model_type": "electra",
    "vocab_size": 35_000,
    "embedding_size": 768,
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
            name="koelectra-base",
            description="KoELECTRA v3 base discriminator (monologg): Korean ELECTRA, new head",
            source=zoo.HubSource(repo_id="monologg/koelectra-base-v3-discriminator"),
            family="electra",
            tokenizer=zoo.TokenizerSettings(max_length=128),
            resources=zoo.Resources(
                architecture=ARCHITECTURE,
                methods=("full", "lora"),
                lora_targets=("query", "value"),
            ),
            defaults={"learning_rate": 5e-5, "batch_size": 32},
        )
    )
