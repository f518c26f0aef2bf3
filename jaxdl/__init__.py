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

from jaxdl import losses, metrics
from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.cifar import load_cifar
from jaxdl.data.formats.conllu import read_conllu, write_conllu
from jaxdl.data.formats.fasttext import read_fasttext
from jaxdl.data.formats.idx import load_mnist, read_idx
from jaxdl.data.formats.plain_text import read_corpus
from jaxdl.data.formats.sklearn import load_digits_images, load_sklearn
from jaxdl.data.sources import ArrayTrainSource, LabelBudgetSource, TrainSource
from jaxdl.data.stdlib_corpus import embedded_corpus, embedded_labelled_sentences
from jaxdl.data.text import Vocab, tokenize
from jaxdl.distributed import make_mesh
from jaxdl.errors import (CheckpointError, ConfigError, DataError, JaxdlError,
                          NonFiniteError, ShapeMismatchError)
from jaxdl.metrics import Metric
from jaxdl.models.backprop import manual_gradients
from jaxdl.models.cnn import LeNet5, SmallCNN, TutorialCNN
from jaxdl.models.conv import Conv2d
from jaxdl.ops.conv import conv2d
from jaxdl.models.linear import LinearRegression, LogisticRegression, least_squares
from jaxdl.models.mlp import MLP
from jaxdl.models.perceptron import Perceptron, train_perceptron
from jaxdl.models.resnet import ResNet18, ResNet20
from jaxdl.models.rnn import RNN
from jaxdl.models.sequence import LSTMTagger, RNNClassifier, RNNLanguageModel
from jaxdl.models.transformer_encoder import TransformerEncoder, TransformerEncoderConfig
from jaxdl.pretrained.bert_checkpoint import bert_config, load_bert
from jaxdl.pretrained.bert_tokenizer import BertTokenizer
from jaxdl.word2vec.training import fit_word2vec_model
from jaxdl.optim import make_optimizer
from jaxdl.evaluation.few_shot import few_shot_probe
from jaxdl.evaluation.encoder_embeddings import encode_sentences
from jaxdl.evaluation.sentence_encoders import (MeanPoolEncoder, RNNSentenceEncoder, SIFEncoder,
                                                TransformerSentenceEncoder)
from jaxdl.evaluation.word2vec_format import load_word2vec_format, save_word2vec_format
from jaxdl.evaluation.word_vectors import WordVectors
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.loop import FitResult, fit
from jaxdl.train.state import TrainState, params_sha256
from jaxdl.train.step import make_eval_step, make_train_loop, make_train_step
from jaxdl.train.task import Task, binary_classification, classification, regression
from jaxdl.transfer import load_pretrained, maybe_init_from

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
