#!/usr/bin/env bash
# Run HERE (a machine with the package index) before calling the GPU machine, which has no
# network and neither fairseq nor several of its dependencies (docs/gpu.md).
# Fills two git-ignored folders that the device tool must carry:
#   .whl/       wheels for the GPU machine's Python (3.12) / manylinux x86_64, and the sdists of
#               fairseq-fixed and antlr4 (both built there, --no-build-isolation)
#   .gpu_data/  a copy of the shared datasets the benchmark reads (PubMed XML, NCBI, MeQSum,
#               MEDIQA 2021 QS) — a transport copy for that one run, never part of the project
# Environment:
#   WHL_DIR=.whl       where the wheels go
#   PY_VERSION=3.12    the Python the wheels are for (benchmarks/gpu_rehearse.sh: this machine's)
#   SKLEARN_DIR=.whl_sklearn  scikit-learn + scipy, carried only for a machine without scikit-learn
#   NO_DATA=1          skip the .gpu_data copy (the rehearsal reads ../shared/data itself)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
WHL_DIR=${WHL_DIR:-.whl}
PY_VERSION=${PY_VERSION:-3.12}
mkdir -p "$WHL_DIR"
# what the GPU machine lacks (it has torch, numpy, sentencepiece, safetensors, transformers and
# their dependencies); `wheel` lets setuptools < 70.1 build the two sdists without isolation
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d "$WHL_DIR" hydra-core==1.3.2 omegaconf==2.3.0 bitarray sacrebleu portalocker tabulate colorama regex \
  lxml pysbd cython wheel
# the sdists (built on the GPU machine against its torch); metadata is prepared with the
# project's own venv, which has torch and Cython
"${PYTHON:-.venv/bin/python}" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$WHL_DIR" \
  fairseq-fixed==0.12.3.1 antlr4-python3-runtime==4.9.3
# fairseq imports scikit-learn (fairseq's tasks/audio_classification.py) whenever it loads its tasks; the GPU
# machine may lack it.  Kept apart (42 MiB, mostly scipy): carried only when the machine has none.
SKLEARN_DIR=${SKLEARN_DIR:-.whl_sklearn}
mkdir -p "$SKLEARN_DIR"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d "$SKLEARN_DIR" scikit-learn scipy joblib threadpoolctl cloudpickle narwhals
if [ -z "${NO_DATA:-}" ]; then
  mkdir -p .gpu_data
  for d in pubmed_xml ncbi_disease meqsum mediqa2021_qs; do
    [ -d "../shared/data/$d" ] && cp -r "../shared/data/$d" .gpu_data/ || echo "absent: ../shared/data/$d"
  done
  du -sh .gpu_data
fi
du -sh "$WHL_DIR" "$SKLEARN_DIR"
