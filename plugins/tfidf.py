"""The classic baseline: character n-gram TF-IDF and logistic regression (scikit-learn).

Trained in seconds on a CPU, recorded and compared like any model: the "what a classic ML
pipeline gets" row. Character n-grams within words suit Korean, whose words carry particles
and endings. Text pairs get one vectorizer per text, side by side (a question's n-grams are
other features than the same n-grams in its reply). It is saved as plain JSON and NumPy
arrays, not pickles, so loading it can never run code.
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


def _features(vectorizers, texts, pairs=None):
    """The texts' features, and beside them their second texts' (a text pair's)."""
    from scipy.sparse import hstack

    columns = [texts] if pairs is None else [texts, pairs]
    return hstack([v.transform(c) for v, c in zip(vectorizers, columns, strict=True)]).tocsr()


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
        vectorizers = [_vectorizer() for _ in range(1 if splits.train.pairs is None else 2)]
        columns = (splits.train.texts, splits.train.pairs)
        for vectorizer, texts in zip(vectorizers, columns, strict=False):
            vectorizer.fit(texts)
        features = _features(vectorizers, splits.train.texts, splits.train.pairs)
        if job.multi_label:
            classifier = _fit_per_label(
                features, splits.multi_hot(splits.train), job.class_weights(), job.seed
            )
        else:
            classifier = LogisticRegression(
                max_iter=2000,
                random_state=job.seed,
                class_weight=_class_weight(job.settings.class_weights, labels),
            )
            classifier.fit(features, [ids[label] for label in splits.train.labels])
        progress.advance()
        progress.stop()
        seconds = time.perf_counter() - started

    def probabilities(rows):
        return _full_probabilities(
            classifier, _features(vectorizers, rows.texts, rows.pairs), labels
        )

    # Multi-label: each label's decision threshold, from the validation rows (training.threshold).
    thresholds = job.thresholds(probabilities(splits.validation))

    def evaluate(rows):
        return zoo.score_split(
            probabilities(rows),
            rows.labels,
            labels,
            job.metrics,
            separator=splits.separator,
            thresholds=thresholds,
        )

    validation = evaluate(splits.validation)
    # One fit, one evaluation: what the run listeners hear (zoo's engine reports each one).
    job.events.evaluated(step=1, epoch=1.0, metrics=validation[0])
    test = evaluate(splits.test) if splits.test else zoo.NOT_SCORED
    _save(run_dir / "model", vectorizers, classifier, labels)
    weights = int(np.asarray(classifier.coef_).size + np.asarray(classifier.intercept_).size)
    return run_dir, zoo.TrainResult.scored(
        validation,
        test,
        log_history=[],
        parameters=weights,
        trainable_parameters=weights,
        train_seconds=seconds,
        peak_memory_bytes=peak.peak,
        peak_memory_kind=peak.kind,
        device=device.name,
        precision="fp64",
        thresholds=thresholds,
    )


class _PerLabel:
    """Multi-label: one binary logistic regression per label (one-vs-rest), as two arrays."""

    def __init__(self, coef, intercept):
        self.coef_, self.intercept_ = coef, intercept

    def probabilities(self, features):
        import numpy as np

        return 1.0 / (1.0 + np.exp(-(features @ self.coef_.T + self.intercept_)))


def _fit_per_label(features, targets, positive_weights, seed):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    coefs, intercepts = [], []
    for label in range(targets.shape[1]):
        weight = None if positive_weights is None else {0: 1.0, 1: float(positive_weights[label])}
        fitted = LogisticRegression(max_iter=2000, random_state=seed, class_weight=weight)
        fitted.fit(features, targets[:, label])
        coefs.append(fitted.coef_[0])
        intercepts.append(fitted.intercept_[0])
    return _PerLabel(np.vstack(coefs), np.asarray(intercepts))


def _full_probabilities(classifier, features, labels):
    """Probabilities over every label, also for labels the classifier never saw in training
    (multi-label: each label's own)."""
    import numpy as np

    if isinstance(classifier, _PerLabel):
        return classifier.probabilities(features)
    seen = classifier.predict_proba(features)
    full = np.zeros((features.shape[0], len(labels)))
    full[:, classifier.classes_] = seen
    return full


def _save(model_dir: Path, vectorizers, classifier, labels) -> None:
    import numpy as np

    model_dir.mkdir()
    meta = {
        "kind": "zoo-tfidf-logreg",
        "labels": list(labels),
        "ngram_range": list(NGRAMS),
        "vocabulary": _vocabulary(vectorizers[0]),
    }
    if isinstance(classifier, _PerLabel):
        meta["multi_label"] = True
    else:
        meta["classes"] = [int(c) for c in classifier.classes_]
    idf = {"idf": vectorizers[0].idf_}
    if len(vectorizers) == 2:  # a text pair: the second text's vectorizer
        meta["pair_vocabulary"] = _vocabulary(vectorizers[1])
        idf["pair_idf"] = vectorizers[1].idf_
    (model_dir / "tfidf.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    np.savez(
        model_dir / "weights.npz", **idf, coef=classifier.coef_, intercept=classifier.intercept_
    )


def _vocabulary(vectorizer):
    return {term: int(i) for term, i in vectorizer.vocabulary_.items()}


def predict(model_dir: Path, texts):
    """Probabilities for texts, or for (first, second) pairs when the model learned pairs."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    meta = json.loads((model_dir / "tfidf.json").read_text(encoding="utf-8"))
    weights = np.load(model_dir / "weights.npz", allow_pickle=False)
    vectorizers = []
    for prefix in ("", "pair_") if "pair_vocabulary" in meta else ("",):
        vectorizer = _vectorizer(vocabulary=meta[f"{prefix}vocabulary"])
        vectorizer.idf_ = weights[f"{prefix}idf"]
        vectorizers.append(vectorizer)
    if meta.get("multi_label"):
        classifier = _PerLabel(weights["coef"], weights["intercept"])
    else:
        classifier = LogisticRegression()
        classifier.coef_ = weights["coef"]
        classifier.intercept_ = weights["intercept"]
        classifier.classes_ = np.asarray(meta["classes"])
    texts = list(texts)
    learned_pairs = len(vectorizers) == 2
    # A pair's two texts read as one, or one text's characters as a pair: a wrong number.
    if any((isinstance(t, tuple) and len(t) == 2) != learned_pairs for t in texts):
        learned = "text pairs" if learned_pairs else "single texts"
        raise ValueError(f"this TF-IDF model learned {learned}; give it {learned}")
    if learned_pairs:
        features = _features(vectorizers, [t[0] for t in texts], [t[1] for t in texts])
    else:
        features = _features(vectorizers, texts)
    return _full_probabilities(classifier, features, meta["labels"])


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="tfidf",
            description="character 1-3-gram TF-IDF + logistic regression (scikit-learn)",
            source=zoo.NoWeights(),
            family="other",
            resources=zoo.Resources(methods=("full",)),
            engine=zoo.CustomEngine(
                train=train, predict=predict, text_pairs=True, multi_label=True
            ),
        )
    )
