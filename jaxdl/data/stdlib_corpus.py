"""Real English that ships with every Python: a default corpus needing no download.

* `embedded_corpus()`: the prose of the language reference topics
  (`pydoc_data.topics.topics`, what `help("if")` shows) plus the docstrings of a
  fixed, sorted list of standard-library modules, split into sentences and
  tokenized. On CPython 3.11.7 it is 13,817 sentences, 227,112 tokens.
* `embedded_labelled_sentences()`: docstring sentences labelled by the top-level
  package they document (email, asyncio, ...), for sentence classification;
  `split_labelled` makes a deterministic stratified train/test split.

Both are deterministic for a given Python version and cached in-process. Only
side-effect-free library modules are imported (no antigravity/this/tkinter/
idlelib/test packages).
"""

from __future__ import annotations

import functools
import ast
import importlib
import importlib.util
import inspect
import re
import types
import warnings
from typing import Sequence

import numpy as np

from jaxdl.data.text import tokenize

# Labelled packages: the 10 with the most docstring sentences on CPython 3.11
# among email, xml, json, asyncio, multiprocessing, unittest, http, logging,
# collections (71), importlib, concurrent (98), sqlite3 (9), urllib, xmlrpc
# and json (59).
PACKAGE_MODULES: dict[str, tuple[str, ...]] = {
    "asyncio": ("asyncio", "asyncio.base_events", "asyncio.events", "asyncio.futures", "asyncio.locks",
                "asyncio.protocols", "asyncio.queues", "asyncio.runners", "asyncio.streams",
                "asyncio.subprocess", "asyncio.taskgroups", "asyncio.tasks", "asyncio.timeouts",
                "asyncio.transports", "asyncio.unix_events"),
    "email": ("email", "email._header_value_parser", "email._policybase", "email.charset",
              "email.contentmanager", "email.feedparser", "email.generator", "email.header",
              "email.headerregistry", "email.message", "email.parser", "email.policy", "email.utils"),
    "http": ("http", "http.client", "http.cookiejar", "http.cookies", "http.server"),
    "importlib": ("importlib", "importlib._abc", "importlib._bootstrap", "importlib._bootstrap_external",
                  "importlib.abc", "importlib.machinery", "importlib.metadata", "importlib.metadata._adapters",
                  "importlib.metadata._meta", "importlib.readers", "importlib.resources",
                  "importlib.resources._adapters", "importlib.resources._common", "importlib.resources.abc",
                  "importlib.resources.readers", "importlib.resources.simple", "importlib.simple",
                  "importlib.util"),
    "logging": ("logging", "logging.config", "logging.handlers"),
    "multiprocessing": ("multiprocessing", "multiprocessing.connection", "multiprocessing.context",
                        "multiprocessing.dummy", "multiprocessing.forkserver", "multiprocessing.heap",
                        "multiprocessing.managers", "multiprocessing.pool", "multiprocessing.process",
                        "multiprocessing.queues", "multiprocessing.reduction", "multiprocessing.resource_sharer",
                        "multiprocessing.resource_tracker", "multiprocessing.shared_memory",
                        "multiprocessing.sharedctypes", "multiprocessing.spawn", "multiprocessing.synchronize",
                        "multiprocessing.util"),
    "unittest": ("unittest", "unittest.case", "unittest.loader", "unittest.main", "unittest.mock",
                 "unittest.result", "unittest.runner", "unittest.suite"),
    "urllib": ("urllib", "urllib.error", "urllib.parse", "urllib.request", "urllib.robotparser"),
    "xml": ("xml.dom", "xml.dom.minidom", "xml.dom.pulldom", "xml.etree.ElementTree", "xml.sax",
            "xml.sax.handler", "xml.sax.saxutils", "xml.sax.xmlreader"),
    "xmlrpc": ("xmlrpc", "xmlrpc.client", "xmlrpc.server"),
}

# Further modules for the unlabelled corpus only.
CORPUS_EXTRA_MODULES: tuple[str, ...] = (
    "_collections_abc", "_pydecimal", "_pyio", "_strptime", "_threading_local",
    "abc", "array", "bdb", "binascii", "builtins", "bz2", "code", "codeop", "compileall",
    "contextvars", "copyreg", "cProfile", "fileinput", "getopt", "getpass", "graphlib", "hashlib",
    "keyword", "linecache", "lzma", "math", "modulefinder", "netrc", "pdb", "pkgutil", "posixpath",
    "profile", "pstats", "py_compile", "quopri", "reprlib", "runpy", "shelve", "signal", "ssl",
    "stat", "struct", "symtable", "sys", "sysconfig", "time", "unicodedata", "wave", "zipapp",
    "zipimport", "zlib", "argparse", "ast", "base64", "bisect", "calendar", "cmd", "codecs", "collections", "collections.abc",
    "concurrent.futures",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "dis", "doctest", "enum", "filecmp", "fnmatch", "fractions", "ftplib", "functools", "gettext",
    "glob", "gzip", "heapq", "hmac", "html", "html.parser", "imaplib", "inspect", "io", "ipaddress",
    "itertools", "json", "json.decoder", "json.encoder", "locale", "mailbox", "mimetypes", "numbers",
    "operator", "optparse", "os", "pathlib", "pickle", "pickletools", "platform", "plistlib",
    "poplib", "pprint", "pydoc", "queue", "random", "re", "sched", "secrets", "selectors", "shlex",
    "shutil", "smtplib", "socket", "socketserver", "sqlite3", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback",
    "types", "typing", "uuid", "warnings", "weakref", "wsgiref.handlers", "zipfile", "zoneinfo",
)

# A sentence ends at . ! or ? followed by space and an upper-case letter,
# quote or bracket; abbreviations like "e.g. foo" stay inside the sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[*])")
_HEADING_RULE = re.compile(r"^[*=\-~^\"]{3,}$")
_MIN_TOKENS = 4
_TERMINALS = (".", "?", "!", ":")


def _prose_blocks(text: str) -> list[str]:
    """Runs of lines at one indentation, joined; doctest lines and heading rules dropped.

    Indented text is kept: most of it is prose (method descriptions, argument
    lists); code is removed later by the sentence filter.
    """
    blocks, current, current_indent = [], [], None
    for line in text.split("\n"):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        boundary = not stripped or stripped.startswith((">>>", "...")) or _HEADING_RULE.match(stripped)
        if boundary or indent != current_indent:
            if current:
                blocks.append(" ".join(current))
            current, current_indent = [], indent
        if not boundary:
            current.append(stripped)
    if current:
        blocks.append(" ".join(current))
    return blocks


def _sentences(text: str) -> list[list[str]]:
    """Tokenized prose sentences of a text.

    A kept sentence has at least `_MIN_TOKENS` tokens, at least 60% of them
    alphabetic, and ends with . ? ! or : -- which drops code lines, grammar
    rules, tables and sentences cut off by a code example.
    """
    sentences = []
    for block in _prose_blocks(text):
        for sentence in _SENTENCE_END.split(block):
            tokens = tokenize(sentence)
            words = sum(token.isalpha() for token in tokens)
            if len(tokens) >= _MIN_TOKENS and words >= 0.6 * len(tokens) and tokens[-1] in _TERMINALS:
                sentences.append(tokens)
    return sentences


def _source_docstrings(source: str) -> list[str]:
    """Docstrings of a Python source: the module's, then every class and function's, in source order."""
    docs = []

    def visit(statements: list[ast.stmt]) -> None:
        # Walks statement bodies only (defs may sit inside if/try blocks);
        # expressions cannot hold docstrings, and ast.walk over them is slow.
        for node in statements:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    docs.append(doc)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    visit(children)

    tree = ast.parse(source)
    module_doc = ast.get_docstring(tree)
    docs.extend([module_doc] if module_doc else [])
    visit(tree.body)
    return docs


def _compiled_docstrings(module: types.ModuleType) -> list[str]:
    """Docstrings of a built-in (C) module: its own, its routines' and its classes' methods', by name."""
    docs = [inspect.cleandoc(module.__doc__)] if module.__doc__ else []
    for name, value in sorted(vars(module).items()):
        if name.startswith("__") or not (inspect.isclass(value) or inspect.isroutine(value)):
            continue
        if isinstance(value.__doc__, str):
            docs.append(inspect.cleandoc(value.__doc__))
        if inspect.isclass(value) and value.__module__ == module.__name__:
            docs.extend(
                inspect.cleandoc(member.__doc__)
                for member_name, member in sorted(vars(value).items())
                if not member_name.startswith("__") and inspect.isroutine(member) and isinstance(member.__doc__, str)
            )
    return docs


def _module_docstrings(module_name: str) -> list[str]:
    """All docstrings of a standard-library module.

    A pure-Python module is read from its source with `ast` rather than
    imported and introspected: no import side effects, and the result cannot
    change when another library has monkey-patched the module (typing_extensions
    patches `typing`, for instance). Built-in modules are introspected.
    """
    try:
        spec = importlib.util.find_spec(module_name)
    except ImportError:
        spec = None
    if spec is None:  # a module this Python build lacks
        return []
    if spec.origin and spec.origin.endswith(".py"):
        with open(spec.origin, encoding="utf-8") as handle:
            return _source_docstrings(handle.read())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a DeprecationWarning raised on import
        return _compiled_docstrings(importlib.import_module(module_name))


@functools.lru_cache(maxsize=None)
def _docstring_sentences(module_names: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    seen, sentences = set(), []
    for name in module_names:
        for doc in _module_docstrings(name):
            for sentence in _sentences(doc):
                key = tuple(sentence)
                if key not in seen:  # shared docstrings (e.g. overridden methods) count once
                    seen.add(key)
                    sentences.append(key)
    return tuple(sentences)


@functools.lru_cache(maxsize=1)
def _corpus() -> tuple[tuple[str, ...], ...]:
    from pydoc_data.topics import topics

    prose = [tuple(s) for key in sorted(topics) for s in _sentences(topics[key])]
    labelled_modules = tuple(m for modules in PACKAGE_MODULES.values() for m in modules)
    all_modules = tuple(sorted(set(labelled_modules + CORPUS_EXTRA_MODULES)))
    return tuple(prose) + _docstring_sentences(all_modules)


def embedded_corpus() -> list[list[str]]:
    """The embedded English corpus: a list of sentences, each a list of lower-cased tokens.

    Same result on every call for a given Python version (13,817 sentences,
    227,112 tokens on CPython 3.11.7). Cached after the first call.
    """
    return [list(sentence) for sentence in _corpus()]


@functools.lru_cache(maxsize=None)
def _labelled(max_per_class: int) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    by_package = {package: _docstring_sentences(modules) for package, modules in sorted(PACKAGE_MODULES.items())}
    owners: dict[tuple[str, ...], set[str]] = {}
    for package, sentences in by_package.items():
        for sentence in sentences:
            owners.setdefault(sentence, set()).add(package)
    sentences, labels = [], []
    for package, package_sentences in by_package.items():
        # A sentence two packages share cannot be classified.
        own = [s for s in package_sentences if len(owners[s]) == 1]
        if len(own) > max_per_class:  # an even sample across the package's modules, not its first ones
            keep = np.sort(np.random.default_rng(0).choice(len(own), max_per_class, replace=False))
            own = [own[i] for i in keep]
        sentences.extend(own)
        labels.extend([package] * len(own))
    return tuple(sentences), tuple(labels)


def embedded_labelled_sentences(*, max_per_class: int = 400) -> tuple[list[list[str]], list[str]]:
    """Docstring sentences labelled by the standard-library package they document.

    The classes are `sorted(PACKAGE_MODULES)`. On CPython 3.11.7, with the default
    cap: asyncio, email, logging 400 each (of 668, 619, 459), xml 365,
    importlib 359, unittest 354, http 350, urllib 193, multiprocessing 127,
    xmlrpc 110 (3,058 sentences; majority class 13.1%).

    Args:
      max_per_class: keep at most this many sentences per package (a fixed
        random subset), so that the classes are roughly balanced.

    Returns:
      `(sentences, labels)`: token lists and package names, grouped by package in sorted order.
    """
    sentences, labels = _labelled(max_per_class)
    return [list(s) for s in sentences], list(labels)


def split_labelled(
    sentences: Sequence[Sequence[str]], labels: Sequence[str], *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[tuple[list, list], tuple[list, list]]:
    """A deterministic stratified train/test split.

    Args:
      sentences: examples.
      labels: one label per example.
      test_fraction: share of each class held out (rounded, at least one if the class has two or more).
      seed: shuffle seed; the same seed gives the same split.

    Returns:
      `((train_sentences, train_labels), (test_sentences, test_labels))`, each in shuffled order.
    """
    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    train_index, test_index = [], []
    for label in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(labels_array == label))
        held_out = max(int(round(test_fraction * len(members))), 1 if len(members) > 1 else 0)
        test_index.extend(members[:held_out])
        train_index.extend(members[held_out:])
    train_index, test_index = rng.permutation(train_index), rng.permutation(test_index)
    return (
        ([list(sentences[i]) for i in train_index], [labels[i] for i in train_index]),
        ([list(sentences[i]) for i in test_index], [labels[i] for i in test_index]),
    )
