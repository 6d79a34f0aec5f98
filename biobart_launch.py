"""Entry point of every biobart-* console script: starts a command without importing torch or fairseq.

``import biobart_fairseq`` registers the plugin with fairseq, which imports torch and fairseq
(3-4 s).  The data and scoring commands need neither, so each console script enters here: the
launcher sets ``starting_command`` while it imports ``biobart_fairseq.cli.<module>``, the package's
``__init__`` sees the flag and leaves registration for later, and the command runs.  Commands that
load a model call ``biobart_fairseq.register()`` before they do (see that function).

``python -m biobart_launch <module> [args]`` runs a command the same way, e.g.
``python -m biobart_launch score --help``.
"""

import importlib
import sys

#: True while a command's module is being imported; read by biobart_fairseq/__init__.py.
starting_command = False


def run(module, argv=None):
    """Import biobart_fairseq.cli.<module> without registering the plugin and return its main()'s status."""
    global starting_command
    starting_command = True
    try:
        command = importlib.import_module(f"biobart_fairseq.cli.{module}")
    finally:
        starting_command = False
    return command.main() if argv is None else command.main(argv)


def prepare_pubmed():
    return run("prepare_pubmed")


def binarize():
    return run("binarize")


def fill_mask():
    return run("fill_mask")


def convert():
    return run("convert")


def prepare_seq2seq():
    return run("prepare_seq2seq")


def binarize_seq2seq():
    return run("binarize_seq2seq")


def score():
    return run("score")


def prepare_el():
    return run("prepare_el")


def el_eval():
    return run("el_eval")


def prepare_ner():
    return run("prepare_ner")


def ner_score():
    return run("ner_score")


def write_results():
    return run("write_results")


def tables():
    return run("tables")


def link():
    return run("link")


def tag():
    return run("tag")


def annotate():
    return run("annotate")


def generate():
    return run("generate")


def strip_checkpoint():
    return run("strip_checkpoint")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m biobart_launch <module in biobart_fairseq/cli> [arguments]")
    module = sys.argv.pop(1)
    sys.exit(run(module))

