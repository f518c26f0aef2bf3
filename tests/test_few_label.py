"""The few-label rule, the TF-IDF baseline and the pooled probes (jaxdl.recipes.few_label,
tfidf_baseline, pooled_probe) and transfer_text with them: the rule's settings,
early stopping that never reads the test split, the baselines on the LSTM runs'
very labelled examples, SIF against a hand computation, and a re-run's table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from conftest import load_experiment, tiny_config, tiny_data
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import draw_k_per_class
from jaxdl.errors import ConfigError
from jaxdl.evaluation.word_vectors import WordVectors
from jaxdl.models.mlp import MLP
from jaxdl.recipes import few_label, pooled_probe, transfer_experiment
from jaxdl.recipes.logistic_regression_run import logistic_regression_run
from jaxdl.recipes.tfidf_baseline import ngrams, tfidf_logreg_run
from jaxdl.train import task as task_lib


def sub_config(labels_per_class: int, seed: int = 0, mode: str = "m", **rule) -> ConfigDict:
    config = tiny_config(batch_size=8, eval_batch_size=64, steps_per_loop=1, log_every=5)
    config.experiment, config.mode = "few_label_test", mode
    config.seed, config.labels_per_class = seed, labels_per_class
    config.model = dict(dropout=0.1)
    return config


def test_the_rule_gives_its_stated_settings():
    rule = few_label.FewLabelRule()
    assert [rule.holdout(n) for n in (1, 2, 5, 10, 20, 50, 245)] == [0, 1, 1, 2, 4, 10, 49]
    # 30 epochs in batches of 32, within [200, 1500], a multiple of 25
    assert [rule.num_steps(n, 32) for n in (9, 40, 160, 400, 1957)] == [200, 200, 200, 375, 1500]
    labels = np.repeat(np.arange(4), 30)
    sub = sub_config(5, seed=3)
    few_label.apply_rule(sub, rule, labels)
    assert sub.train.num_steps == 200 and sub.train.eval_every == 25
    assert (sub.optimizer.name, sub.optimizer.lr, sub.optimizer.weight_decay) == ("adamw", 2e-3, 0.01)
    assert sub.model.dropout == 0.5
    assert (sub.train.early_stopping_metric, sub.train.early_stopping_patience) == ("val/accuracy", 12)
    assert few_label.rule_of(sub) == rule
    one = sub_config(1)  # k = 1: nothing to hold out, the minimum step count
    few_label.apply_rule(one, rule, labels)
    assert one.train.num_steps == 200
    assert len(few_label.labelled_split(labels, 1, 0, rule)[1]) == 0
    untouched = sub_config(5)
    few_label.apply_rule(untouched, None, labels)
    assert untouched.to_dict() == sub_config(5).to_dict() and few_label.rule_of(untouched) is None


def test_bad_rule_settings_are_config_errors():
    with pytest.raises(ConfigError, match="rule='best'; expected one of"):
        few_label.downstream_rule(ConfigDict({"rule": "best"}))
    with pytest.raises(ConfigError, match=r"unknown keys \['epoch'\]"):
        few_label.FewLabelRule.from_config({"epoch": 3})
    with pytest.raises(ConfigError, match="holdout_share=1.0"):
        few_label.FewLabelRule(holdout_share=1.0)
    assert few_label.downstream_rule(ConfigDict({"num_steps": 7})) is None
    assert few_label.schedule_phrase(ConfigDict({"num_steps": 7})) == "after 7 steps"


def test_labelled_split_holds_out_a_share_of_each_class_and_keeps_the_draw():
    labels = np.repeat(np.arange(3), [8, 12, 30])
    rule = few_label.FewLabelRule()
    for k, held in ((5, 1), (8, 2), (1, 0)):
        train, val = few_label.labelled_split(labels, k, 4, rule)
        assert np.array_equal(np.sort(np.concatenate([train, val])), draw_k_per_class(labels, k, 4))
        assert np.bincount(labels[val], minlength=3).tolist() == [held] * 3
    train, val = few_label.labelled_split(labels, 0, 4, rule)  # all labels: a share per class
    assert np.bincount(labels[val]).tolist() == [2, 2, 6] and len(train) == 40
    train, val = few_label.labelled_split(labels, 5, 4, None)  # the fixed rule holds out nothing
    assert len(val) == 0 and np.array_equal(train, draw_k_per_class(labels, 5, 4))


def test_best_eval_chooses_on_val_only():
    history = [{"step": 5, "split": "val", "accuracy": 0.5, "loss": 1.0},
               {"step": 5, "split": "test", "accuracy": 0.9, "loss": 0.1},
               {"step": 10, "split": "val", "accuracy": 0.7, "loss": 0.9},
               {"step": 10, "split": "test", "accuracy": 0.2, "loss": 3.0},
               {"step": 15, "split": "val", "accuracy": 0.7, "loss": 0.8},  # tie: lower loss
               {"step": 15, "split": "test", "accuracy": 0.1, "loss": 4.0},
               {"step": 20, "split": "val", "accuracy": 0.7, "loss": 0.8},  # full tie: earlier
               {"step": 20, "split": "test", "accuracy": 0.3, "loss": 2.0}]
    chosen = few_label.best_eval(history)
    assert chosen["step"] == 15 and chosen["test"]["accuracy"] == 0.1
    assert few_label.best_eval([e for e in history if e["split"] == "test"]) is None


def separable_pool(n: int, classes: int = 3, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 4)).astype(np.float32) + 2.0 * np.eye(classes, 4)[y].astype(np.float32)
    return ArrayDataset({"x": x, "y": y.astype(np.int32)}, name="pool")


def test_early_stopping_never_reads_the_test_labels(tmp_path):
    pool, test = separable_pool(60), separable_pool(30, seed=1)
    shuffled = ArrayDataset({"x": test.arrays["x"],
                             "y": np.random.default_rng(5).permutation(test.arrays["y"])}, name="test")
    rule = few_label.FewLabelRule(min_steps=20, max_steps=20, eval_every=4, patience=100, lr=0.05)
    runs = {}
    for name, test_split in (("real", test), ("shuffled", shuffled)):
        config = sub_config(6)
        few_label.apply_rule(config, rule, pool.arrays["y"])
        model = MLP(4, (8,), 3, dropout=config.model.dropout, rngs=nnx.Rngs(0))
        runs[name] = transfer_experiment.fit_downstream(model, task_lib.classification(), pool,
                                                   test_split, config, str(tmp_path / name))
    real, shuffled_run = runs["real"], runs["shuffled"]
    assert real["selected"] == shuffled_run["selected"]
    assert real["params_sha256"] == shuffled_run["params_sha256"]
    assert real["metrics"]["test"] != shuffled_run["metrics"]["test"]  # test did change
    # the chosen step is the best val evaluation in the run's own log, test at that step
    events = [json.loads(line) for line in (tmp_path / "real" / "metrics.jsonl").open()]
    val = {e["step"]: e for e in events if e["split"] == "val"}
    assert sorted(val) == [4, 8, 12, 16, 20]
    best = max(val.values(), key=lambda e: (e["accuracy"], -e["loss"], -e["step"]))
    assert real["selected"]["step"] == best["step"]
    at_best = [e for e in events if e["split"] == "test" and e["step"] == best["step"]][0]
    assert real["metrics"]["test"]["accuracy"] == at_best["accuracy"]
    assert real["labelled"]["val"] == 3 and real["train_examples"] == 15


def test_tfidf_mode_fits_exactly_the_lstm_runs_labelled_examples(tmp_path):
    words = ["alpha", "beta", "gamma", "delta", "omega"]
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 4
    sentences = [[words[c], *rng.choice(words, 3)] + [f"id{i}"] for i, c in enumerate(labels)]
    config = sub_config(5, seed=2, mode="tfidf_logreg")
    few_label.apply_rule(config, few_label.FewLabelRule(), labels)
    seen = {}

    def featurize(train, val, test):
        seen["train"], seen["val"] = train, val
        from jaxdl.recipes.tfidf_baseline import tfidf_features
        return tfidf_features(train, val, test)

    summary = logistic_regression_run(featurize, sentences, labels, sentences[:8], labels[:8],
                                      config, str(tmp_path))
    train, val = few_label.labelled_split(labels, 5, 2, few_label.rule_of(config))
    assert seen["train"] == [sentences[i] for i in train]
    assert seen["val"] == [sentences[i] for i in val]
    assert summary["labelled"] == few_label.indices_digest(train, val)
    assert summary["selected"]["C"] in few_label.FewLabelRule().C_grid
    baseline = tfidf_logreg_run(sentences, labels, sentences[:8], labels[:8], config, str(tmp_path))
    assert baseline["labelled"] == summary["labelled"] and baseline["metrics"] == summary["metrics"]
    assert set(baseline) >= {"experiment", "metrics", "params_sha256", "num_params", "steps", "seed",
                             "mode", "labels_per_class", "train_examples"}
    assert ngrams(["a", "b", "c"]) == ["a", "b", "c", "a b", "b c"]
    fixed = sub_config(5, seed=2, mode="tfidf_logreg")  # no rule: every drawn label, fixed C
    summary = tfidf_logreg_run(sentences, labels, sentences[:8], labels[:8], fixed, None)
    assert summary["selected"] == {"C": few_label.FewLabelRule().fixed_C, "val": None}
    assert summary["labelled"] == few_label.indices_digest(draw_k_per_class(labels, 5, 2), [])
    assert list(summary["metrics"]) == ["test"]


def test_sif_pooling_equals_a_numpy_hand_computation():
    vectors = WordVectors(["the", "cat", "sat", "mat"],
                          np.array([[1.0, 0.0, 0.5], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0],
                                    [0.0, -1.0, 3.0]]))
    counts = {"the": 6, "cat": 2, "sat": 1, "mat": 1}
    reference = [["the", "cat", "sat"], ["the", "mat"], ["cat", "unknown", "mat"]]
    a = 0.1
    p = {w: c / 10 for w, c in counts.items()}

    def average(sentence):
        rows = [w for w in sentence if w in p]
        return sum(a / (a + p[w]) * vectors[w].astype(np.float64) for w in rows) / len(rows)

    ref = np.stack([average(s) for s in reference])
    u = np.linalg.svd(ref)[2][0]
    queries = [["sat", "mat"], ["the", "the", "cat"]]
    expected = np.stack([average(s) - (average(s) @ u) * u for s in queries])
    got = pooled_probe.sif_features(vectors, counts, reference, a=a)(queries)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    mean = pooled_probe.mean_features(vectors)([["cat", "sat", "nope"], ["nope"]])
    np.testing.assert_allclose(mean, [[0.5, 1.5, 0.5], [0.0, 0.0, 0.0]])
    sentences = [["the", "cat"], ["sat", "mat"], ["cat", "cat"], ["mat"]] * 3
    labels = np.array([0, 1, 0, 1] * 3)
    for rule in (None, few_label.FewLabelRule()):  # fixed: no val rows to featurize
        config = sub_config(3, mode="w2v_sif_probe")
        few_label.apply_rule(config, rule, labels)
        summary = pooled_probe.pooled_probe_run(pooled_probe.sif_features(vectors, counts, sentences),
                                                sentences, labels, sentences, labels, config, None)
        assert summary["labelled"]["val"] == (0 if rule is None else 2)
        assert 0.0 <= summary["metrics"]["test"]["accuracy"] <= 1.0


def test_transfer_text_rerun_gives_the_identical_table(tmp_path):
    from jaxdl.data.stdlib_corpus import embedded_corpus
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in embedded_corpus()[:300]) + "\n")
    module = load_experiment("transfer_text")
    config = module.get_config()
    config.data.corpus = str(corpus)
    config.word2vec.epochs = 1
    config.model.update(embed_dim=8, hidden_dim=8)
    config.train.steps_per_loop = 5
    config.downstream.update(modes=("random", "non_static", "tfidf_logreg", "w2v_mean_probe",
                                    "w2v_sif_probe"), labels_per_class=(3,), seeds=(0,),
                             rule="few_label")
    config.downstream.few_label.update(min_steps=10, max_steps=10, eval_every=5)
    first = module.run(config, str(tmp_path / "a"))
    second = module.run(config, str(tmp_path / "b"))
    again = module.run(config, str(tmp_path / "a"))  # every sub-run skipped
    assert first["table"] == second["table"] == again["table"]
    assert "at the best held-out step" in first["headline"]
    digests = {json.loads((tmp_path / "a" / "runs" / f"{m}-k3-s0" / "summary.json").read_text())
               ["labelled"]["sha256"] for m in config.downstream.modes}
    assert len(digests) == 1  # every mode learnt from the same labelled examples
