"""jaxdl: a JAX functional deep-learning research framework.

The public API, listed explicitly. Build a model, ``fit`` it on arrays, read the
history and the metrics::

    import jaxdl
    from flax import nnx

    splits, info = jaxdl.load_sklearn("digits")
    model = jaxdl.MLP(info.num_features, (256,), info.num_classes, rngs=nnx.Rngs(0))
    config = jaxdl.default_config()
    result = jaxdl.fit(model, jaxdl.classification(), jaxdl.ArrayDataset(splits["train"]),
                       eval_data={"test": jaxdl.ArrayDataset(splits["test"])}, config=config)
    result.metrics["test"]["accuracy"]
"""

from jaxdl.version import __version__

import importlib

_EXPORTS = {  # public name -> the module that defines it (imported on first use)
    "ArrayDataset": "jaxdl.data.arrays",
    "ArrayTrainSource": "jaxdl.data.sources",
    "bert_config": "jaxdl.pretrained.bert_checkpoint",
    "BertTokenizer": "jaxdl.pretrained.bert_tokenizer",
    "binary_classification": "jaxdl.train.task",
    "Checkpointer": "jaxdl.train.checkpoint",
    "CheckpointError": "jaxdl.errors",
    "classification": "jaxdl.train.task",
    "ConfigError": "jaxdl.errors",
    "Conv2d": "jaxdl.models.conv",
    "conv2d": "jaxdl.ops.conv",
    "DataError": "jaxdl.errors",
    "default_config": "jaxdl.config",
    "embedded_corpus": "jaxdl.data.stdlib_corpus",
    "embedded_labelled_sentences": "jaxdl.data.stdlib_corpus",
    "encode_sentences": "jaxdl.evaluation.encoder_embeddings",
    "few_shot_probe": "jaxdl.evaluation.few_shot",
    "fit": "jaxdl.train.loop",
    "fit_word2vec_model": "jaxdl.word2vec.training",
    "FitResult": "jaxdl.train.loop",
    "JaxdlError": "jaxdl.errors",
    "LabelBudgetSource": "jaxdl.data.sources",
    "least_squares": "jaxdl.models.linear",
    "LeNet5": "jaxdl.models.cnn",
    "LinearRegression": "jaxdl.models.linear",
    "load_bert": "jaxdl.pretrained.bert_checkpoint",
    "load_cifar": "jaxdl.data.formats.cifar",
    "load_digits_images": "jaxdl.data.formats.sklearn",
    "load_mnist": "jaxdl.data.formats.idx",
    "load_pretrained": "jaxdl.transfer",
    "load_sklearn": "jaxdl.data.formats.sklearn",
    "load_word2vec_format": "jaxdl.evaluation.word2vec_format",
    "LogisticRegression": "jaxdl.models.linear",
    "losses": "jaxdl.losses#module",
    "LSTMTagger": "jaxdl.models.sequence",
    "make_eval_step": "jaxdl.train.step",
    "make_mesh": "jaxdl.distributed",
    "make_optimizer": "jaxdl.optim",
    "make_train_loop": "jaxdl.train.step",
    "make_train_step": "jaxdl.train.step",
    "manual_gradients": "jaxdl.models.backprop",
    "maybe_init_from": "jaxdl.transfer",
    "MeanPoolEncoder": "jaxdl.evaluation.sentence_encoders",
    "Metric": "jaxdl.metrics",
    "metrics": "jaxdl.metrics#module",
    "MLP": "jaxdl.models.mlp",
    "NonFiniteError": "jaxdl.errors",
    "params_sha256": "jaxdl.train.state",
    "Perceptron": "jaxdl.models.perceptron",
    "read_conllu": "jaxdl.data.formats.conllu",
    "read_corpus": "jaxdl.data.formats.plain_text",
    "read_fasttext": "jaxdl.data.formats.fasttext",
    "read_idx": "jaxdl.data.formats.idx",
    "regression": "jaxdl.train.task",
    "ResNet18": "jaxdl.models.resnet",
    "ResNet20": "jaxdl.models.resnet",
    "RNN": "jaxdl.models.rnn",
    "RNNClassifier": "jaxdl.models.sequence",
    "RNNLanguageModel": "jaxdl.models.sequence",
    "RNNSentenceEncoder": "jaxdl.evaluation.sentence_encoders",
    "save_word2vec_format": "jaxdl.evaluation.word2vec_format",
    "ShapeMismatchError": "jaxdl.errors",
    "SIFEncoder": "jaxdl.evaluation.sentence_encoders",
    "SmallCNN": "jaxdl.models.cnn",
    "Task": "jaxdl.train.task",
    "tokenize": "jaxdl.data.text",
    "train_perceptron": "jaxdl.models.perceptron",
    "TrainSource": "jaxdl.data.sources",
    "TrainState": "jaxdl.train.state",
    "TransformerEncoder": "jaxdl.models.transformer_encoder",
    "TransformerEncoderConfig": "jaxdl.models.transformer_encoder",
    "TransformerSentenceEncoder": "jaxdl.evaluation.sentence_encoders",
    "TutorialCNN": "jaxdl.models.cnn",
    "Vocab": "jaxdl.data.text",
    "WordVectors": "jaxdl.evaluation.word_vectors",
    "write_conllu": "jaxdl.data.formats.conllu",
}


def __getattr__(name: str):
    """Import a public name's module on first use (PEP 562).

    ``import jaxdl`` stays cheap (no jax, flax or scikit-learn), so a command such
    as ``python -m jaxdl.run`` can print its first line before those load.
    """
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'jaxdl' has no attribute {name!r}")
    if target.endswith("#module"):
        value = importlib.import_module(target[:-len("#module")])
    else:
        value = getattr(importlib.import_module(target), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "BertTokenizer", "TransformerEncoder", "TransformerEncoderConfig",
    "TransformerSentenceEncoder", "bert_config", "encode_sentences", "load_bert",
    "MeanPoolEncoder", "RNNSentenceEncoder", "SIFEncoder", "Vocab", "WordVectors",
    "embedded_corpus", "embedded_labelled_sentences", "few_shot_probe", "fit_word2vec_model",
    "load_cifar", "load_digits_images", "load_mnist", "load_pretrained", "load_word2vec_format",
    "maybe_init_from", "read_conllu", "read_corpus", "read_fasttext", "read_idx",
    "save_word2vec_format", "tokenize", "write_conllu",
    "ArrayDataset", "ArrayTrainSource", "CheckpointError", "Checkpointer", "ConfigError",
    "Conv2d", "DataError", "FitResult", "JaxdlError", "LSTMTagger", "LabelBudgetSource", "LeNet5",
    "LinearRegression", "LogisticRegression", "MLP", "Metric", "NonFiniteError",
    "Perceptron", "RNN", "RNNClassifier", "RNNLanguageModel", "ResNet18", "ResNet20",
    "ShapeMismatchError", "SmallCNN", "Task", "TrainSource", "TrainState", "TutorialCNN",
    "binary_classification", "classification", "conv2d", "default_config", "fit",
    "least_squares", "load_sklearn", "losses", "make_eval_step", "make_mesh",
    "make_optimizer", "make_train_loop", "make_train_step", "manual_gradients", "metrics",
    "params_sha256", "regression", "train_perceptron",
]
