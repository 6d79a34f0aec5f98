#!/usr/bin/env bash
# Run HERE (a machine with the package index) before calling the GPU machine, which has no
# network and neither fairseq nor several of its dependencies.
# Fills two git-ignored folders that the device tool must carry:
#   .whl/       wheels for Python 3.12 / manylinux x86_64, and the sdists of fairseq-fixed and antlr4
#   .gpu_data/  a copy of the shared datasets the benchmark reads (PubMed XML, NCBI, MeQSum,
#               MEDIQA 2021 QS) — a transport copy for that one run, never part of the project
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
mkdir -p .whl .gpu_data
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
  -d .whl hydra-core==1.3.2 omegaconf==2.3.0 bitarray sacrebleu portalocker tabulate colorama regex lxml \
  pysbd cython
# the sdists (built on the GPU machine against its torch); metadata is prepared with the
# project's own venv, which has torch and Cython
"${PYTHON:-.venv/bin/python}" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d .whl \
  fairseq-fixed==0.12.3.1 antlr4-python3-runtime==4.9.3
for d in pubmed_xml ncbi_disease meqsum mediqa2021_qs; do
  [ -d "../shared/data/$d" ] && cp -r "../shared/data/$d" .gpu_data/ || echo "absent: ../shared/data/$d"
done
du -sh .whl .gpu_data
