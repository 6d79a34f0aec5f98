"""Samples/s of biomed_denoising's noise vs fairseq's stock DenoisingDataset, same blocks,
same process, same settings (30 % whole-word span masking, Poisson(3), one <mask> per span);
and of ``--noise-style biobart-code`` (the released BioBART code's noise) on the same blocks.

    python benchmarks/noise_throughput.py [DATA_BIN]

Without DATA_BIN it prepares and binarizes the real PubMed sample in ../shared/data first.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
import biobart_fairseq  # noqa: E402,F401
from fairseq.data import DenoisingDataset  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from biobart_fairseq.tasks.biomed_denoising import BiomedDenoisingConfig, BiomedDenoisingTask  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build_data(tmp):
    xml = sorted((REPO.parent / "shared/data/pubmed_xml").glob("*.xml"))
    if not xml:
        sys.exit("no DATA_BIN given and ../shared/data/pubmed_xml not found")
    py = sys.executable
    subprocess.run([py, "-m", "biobart_fairseq.cli.prepare_pubmed", *map(str, xml), "-o", f"{tmp}/text",
                    "--no-progress"], check=True, stderr=subprocess.DEVNULL)
    subprocess.run([py, "-m", "biobart_fairseq.cli.binarize", "--train", f"{tmp}/text/train.txt", "--valid",
                    f"{tmp}/text/valid.txt", "-o", f"{tmp}/bin", "--vocab-size", "8000"], check=True,
                   stderr=subprocess.DEVNULL)
    return f"{tmp}/bin"


def rate(fn, n):
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = sys.argv[1] if len(sys.argv) > 1 else build_data(tmp)
        cfg = OmegaConf.structured(BiomedDenoisingConfig(data=data, seed=1, dataset_impl="mmap"))
        task = BiomedDenoisingTask.setup_task(cfg)
        task.load_dataset("train")
        ours = task.datasets["train"]
        stock = DenoisingDataset(
            ours.dataset, ours.sizes, task.dictionary, task.mask_idx, task.word_starts().long(), shuffle=False,
            seed=1, mask=0.3, mask_random=0.0, insert=0.0, rotate=0.0, permute_sentences=0, bpe=None,
            replace_length=1, mask_length="span-poisson", poisson_lambda=3.0,
        )
        n = len(ours)
        # the stock dataset gets the same marker-free blocks ours produces, so only the noise differs
        targets = [ours[i]["target"] for i in range(n)]
        stock_rate = rate(lambda i: stock.add_whole_word_mask(targets[i].clone(), 0.3), n)
        ours_rate = rate(lambda i: ours[i], n)
        code_cfg = OmegaConf.structured(BiomedDenoisingConfig(data=data, seed=1, dataset_impl="mmap",
                                                              noise_style="biobart-code"))
        code_task = BiomedDenoisingTask.setup_task(code_cfg)
        code_task.load_dataset("train")
        code = code_task.datasets["train"]
        code_rate = rate(lambda i: code[i], n)
        print(f"machine: {os.cpu_count()} CPU cores; one process")
        print(f"{n} samples, mean length {sum(map(len, targets)) / n:.0f} tokens")
        print(f"fairseq DenoisingDataset masking : {stock_rate:8.0f} samples/s")
        print(f"biomed_denoising full __getitem__: {ours_rate:8.0f} samples/s")
        print(f"  --noise-style biobart-code     : {code_rate:8.0f} samples/s")
        print(f"ratio (ours / stock)             : {ours_rate / stock_rate:8.2f}")
        print(f"ratio (biobart-code / stock)     : {code_rate / stock_rate:8.2f}")


if __name__ == "__main__":
    main()
