"""mmBERT base (jhu-clsp): a multilingual ModernBERT (1800+ languages, Korean among them; Gemma 2
tokenizer, 256,000 pieces; up to 8,192 tokens). It has no token_type embeddings.

Where the numbers come from (the hub itself is not reachable here): the sizes (vocab 256,000,
hidden 768, 22 layers, 12 heads, intermediate 1,152, 8,192 positions, global attention every
3rd layer, local window 128) are those of mmBERT-base's config.json as copied in public test
fixtures of ModernBERT loaders on GitHub, and they reproduce the model card's size exactly:
306,939,648 encoder parameters, of which 196,608,000 (256,000 x 768) are word embeddings and
110M are the rest. The flags that have no size of their own (no biases, no dropout, mean
pooling, pad id 0) follow the config.json of mmBERT-small, its smaller sibling
(huggingface.co/datalama/mmBERT-small/blob/main/config.json). zoo counts 307,530,240: the
encoder plus the pretrained prediction head (dense 768 x 768 and its LayerNorm), which
ModernBertForSequenceClassification keeps under the fresh classifier.
"""

import zoo

ARCHITECTURE = {
    "model_type": "modernbert",
    "vocab_size": 256_000,
    "hidden_size": 768,
    "num_hidden_layers": 22,
    "num_attention_heads": 12,
    "intermediate_size": 1_152,
    "max_position_embeddings": 8_192,
    "global_attn_every_n_layers": 3,
    "local_attention": 128,
    "attention_bias": False,
    "mlp_bias": False,
    "norm_bias": False,
    "classifier_bias": False,
    "classifier_pooling": "mean",
    "attention_dropout": 0.0,
    "mlp_dropout": 0.0,
    "embedding_dropout": 0.0,
    "pad_token_id": 0,
}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="mmbert-base",
            description="mmBERT base (jhu-clsp): multilingual ModernBERT, reads Korean, new head",
            source=zoo.HubSource(repo_id="jhu-clsp/mmBERT-base"),
            family="modernbert",
            # ModernBERT's forward takes no token_type_ids.
            tokenizer=zoo.TokenizerSettings(max_length=256, token_type_ids=False),
            resources=zoo.Resources(
                architecture=ARCHITECTURE,
                methods=("full", "lora"),
                lora_targets=("Wqkv",),
            ),
            defaults={"learning_rate": 3e-5, "batch_size": 16},
        )
    )
