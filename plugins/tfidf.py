"""The classic baseline: character n-gram TF-IDF and logistic regression (scikit-learn).

Trained in seconds on a CPU, recorded and compared like any model: the "what a classic ML
pipeline gets" row. Character n-grams within words suit Korean, whose words carry particles
and endings. It is saved as plain JSON and NumPy arrays, not pickles, so loading it can never
run code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import zoo

NGRAMS = (1, 3)


def _vectorizer(vocabulary=None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=NGRAMS, sublinear_tf=True, vocabulary=vocabulary
    )


def _class_weight(setting, labels):
    if setting is None or setting == "balanced":
        return setting
    return dict(enumerate(setting))


def train(job, make_run_dir, progress):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    splits, labels = job.splits, job.splits.labels
    ids = {label: i for i, label in enumerate(labels)}
    # Checks a list of class weights against the labels, as the transformer engine does.
    job.class_weights()
    run_dir = make_run_dir()
    device = zoo.DeviceInfo("cpu", "CPU (scikit-learn)", False)
    with zoo.PeakMemory(device) as peak:
        started = time.perf_counter()
        progress.start("fitting TF-IDF + logistic regression", 1)
        vectorizer = _vectorizer()
        features = vectorizer.fit_transform(splits.train.texts)
        classifier = LogisticRegression(
            max_iter=2000,
            random_state=job.seed,
            class_weight=_class_weight(job.settings.class_weights, labels),
        )
        classifier.fit(features, [ids[label] for label in splits.train.labels])
        progress.advance()
        progress.stop()
        seconds = time.perf_counter() - started

    def evaluate(rows):
        features = vectorizer.transform(rows.texts)
        probabilities = _full_probabilities(classifier, features, labels)
        return zoo.score_split(probabilities, rows.labels, labels, job.metrics)

    validation = evaluate(splits.validation)
    # One fit, one evaluation: what the run listeners hear (zoo's engine reports each one).
    job.events.evaluated(step=1, epoch=1.0, metrics=validation[0])
    test = evaluate(splits.test) if splits.test else zoo.NOT_SCORED
    _save(run_dir / "model", vectorizer, classifier, labels)
    return run_dir, zoo.TrainResult.scored(
        validation,
        test,
        log_history=[],
        parameters=int(np.asarray(classifier.coef_).size + np.asarray(classifier.intercept_).size),
        trainable_parameters=int(classifier.coef_.size + classifier.intercept_.size),
        train_seconds=seconds,
        peak_memory_bytes=peak.peak,
        peak_memory_kind=peak.kind,
        device=device.name,
        precision="fp64",
    )


def _full_probabilities(classifier, features, labels):
    """Probabilities over every label, also for labels the classifier never saw in training."""
    import numpy as np

    seen = classifier.predict_proba(features)
    full = np.zeros((features.shape[0], len(labels)))
    full[:, classifier.classes_] = seen
    return full


def _save(model_dir: Path, vectorizer, classifier, labels) -> None:
    import numpy as np

    model_dir.mkdir()
    meta = {
        "kind": "zoo-tfidf-logreg",
        "labels": list(labels),
        "ngram_range": list(NGRAMS),
        "vocabulary": {term: int(i) for term, i in vectorizer.vocabulary_.items()},
        "classes": [int(c) for c in classifier.classes_],
    }
    (model_dir / "tfidf.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    np.savez(
        model_dir / "weights.npz",
        idf=vectorizer.idf_,
        coef=classifier.coef_,
        intercept=classifier.intercept_,
    )


def predict(model_dir: Path, texts):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    meta = json.loads((model_dir / "tfidf.json").read_text(encoding="utf-8"))
    weights = np.load(model_dir / "weights.npz", allow_pickle=False)
    vectorizer = _vectorizer(vocabulary=meta["vocabulary"])
    vectorizer.idf_ = weights["idf"]
    classifier = LogisticRegression()
    classifier.coef_ = weights["coef"]
    classifier.intercept_ = weights["intercept"]
    classifier.classes_ = np.asarray(meta["classes"])
    return _full_probabilities(classifier, vectorizer.transform(list(texts)), meta["labels"])


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="tfidf",
            description="character 1-3-gram TF-IDF + logistic regression (scikit-learn)",
            source=zoo.NoWeights(),
            family="other",
            resources=zoo.Resources(methods=("full",)),
            engine=zoo.CustomEngine(train=train, predict=predict),
        )
    )
