"""KLUE RoBERTa base (klue): the standard Korean RoBERTa (32,000-piece WordPiece vocabulary,
loaded with a BertTokenizer), on the XLM-R/RoBERTa family: BERT-style type vocabulary of 1,
positions offset by RoBERTa's padding index of 2 (514 rows). RoBERTa-family models must not be
fed BERT-style token_type_ids.

Where the numbers come from (the hub itself is not reachable here): config.json of
klue/roberta-base as fine-tuned copies republish it with "_name_or_path": "klue/roberta-base"
(e.g. huggingface.co/BM-K/KoSimCSE-roberta/blob/main/config.json,
huggingface.co/chunwoolee0/klue_nli_roberta_base_model/blob/main/config.json): model_type
roberta, vocab 32,000, hidden 768, 12 layers, 12 heads, FFN 3,072, 514 positions, type
vocabulary 1.
"""

import zoo

ARCHITECTURE = {
    "model_type": "roberta",
    "vocab_size": 32_000,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3_072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "pad_token_id": 1,
}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="klue-roberta-base",
            description="KLUE RoBERTa base: Korean RoBERTa, new head",
            source=zoo.HubSource(repo_id="klue/roberta-base"),
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
