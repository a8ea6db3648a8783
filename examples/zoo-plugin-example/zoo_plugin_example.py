"""An example third-party zoo plugin.

Install it (``pip install ./examples/zoo-plugin-example``) and ``zoo models`` lists
``klue-roberta-small``, a recipe can pick its best checkpoint by ``training.metric = "mcc"``,
and ``data.preprocess = ["mask-paths"]`` replaces the file paths of tracebacks with [PATH].
Registration is declarative: nothing is downloaded or loaded here.
"""

import re

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


# /home/kim/app.py, ./src/main.c, C:\Users\kim\app.py: two or more path parts, each with a
# letter in it (1/2 is no path).
_PART = r"[\w.-]*[^\W\d][\w.-]*"
PATH = re.compile(rf"(?:[A-Za-z]:\\|\.{{0,2}}/)?(?:{_PART}[/\\])+{_PART}")


@zoo.hookimpl
def register_text_transforms(register):
    register(
        zoo.TextTransform(
            name="mask-paths",
            description="file paths (/home/kim/app.py, C:\\Users\\kim\\app.py) as [PATH]",
            apply=lambda text: PATH.sub("[PATH]", text),
        )
    )
