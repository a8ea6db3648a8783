"""An example third-party zoo plugin.

Install it (``pip install ./examples/zoo-plugin-example``) and ``zoo models`` lists
``klue-roberta-small``, and a recipe can pick its best checkpoint by ``training.metric = "mcc"``.
Registration is declarative: nothing is downloaded or loaded here.
"""

import zoo


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="klue-roberta-small",
            description="KLUE RoBERTa small: a Korean RoBERTa (needs the hub or a local copy)",
            source=zoo.HubSource(repo_id="klue/roberta-small"),
            family="xlm-roberta",
            # RoBERTa-family models must not be fed BERT-style token_type_ids.
            tokenizer=zoo.TokenizerSettings(max_length=128, token_type_ids=False),
            resources=zoo.Resources(parameters=68_090_880),
            defaults={"learning_rate": 3e-5, "batch_size": 32},
        )
    )


def matthews(references, predictions, probabilities, labels):
    """Matthews correlation coefficient: -1 to 1, 0 for guessing; robust to unbalanced classes."""
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(references, predictions))


@zoo.hookimpl
def register_metrics(register):
    register(zoo.Metric(name="mcc", label="MCC", higher_is_better=True, compute=matthews))
