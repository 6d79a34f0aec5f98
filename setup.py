from setuptools import find_packages, setup

setup(
    name="biobart-fairseq",
    version="0.1.0",
    description="BioBART (biomedical BART) as a fairseq --user-dir plugin",
    packages=find_packages(include=["biobart_fairseq", "biobart_fairseq.*"]),
    package_data={"biobart_fairseq": ["data/paper_tables.json"]},  # the paper's Tables 2-6 (biobart-tables)
    python_requires=">=3.9",
    entry_points={
        "console_scripts": [
            "biobart-prepare-pubmed=biobart_fairseq.cli.prepare_pubmed:main",
            "biobart-binarize=biobart_fairseq.cli.binarize:main",
            "biobart-fill-mask=biobart_fairseq.cli.fill_mask:main",
            "biobart-convert=biobart_fairseq.cli.convert:main",
            "biobart-prepare-seq2seq=biobart_fairseq.cli.prepare_seq2seq:main",
            "biobart-score=biobart_fairseq.cli.score:main",
            "biobart-prepare-el=biobart_fairseq.cli.prepare_el:main",
            "biobart-el-eval=biobart_fairseq.cli.el_eval:main",
            "biobart-prepare-ner=biobart_fairseq.cli.prepare_ner:main",
            "biobart-ner-score=biobart_fairseq.cli.ner_score:main",
            "biobart-results=biobart_fairseq.cli.write_results:main",
            "biobart-tables=biobart_fairseq.cli.tables:main",
        ]
    },
)
