"""The recipes: the paper-scale pretraining one passes fairseq's own argument parser with
the paper's numbers, and the tiny CPU one trains; every seq2seq recipe's generate command
carries BioBART's generation settings (beam, trigram blocking, per-dataset output lengths that
match Hugging Face's counting)."""

import json
import os
import stat

import pytest

from conftest import REPO, run

FAKE_TORCHRUN = """#!{python}
# Stands in for torchrun: checks the fairseq-train command it was given, runs nothing.
import json, sys
args = sys.argv[1:]
launcher = args[: args.index(next(a for a in args if a.endswith("fairseq-train")))]
train_args = args[len(launcher) + 1:]
from fairseq import options
import biobart_fairseq
parsed = options.parse_args_and_arch(options.get_training_parser(), train_args)
print(json.dumps({{"launcher": launcher, "task": parsed.task, "arch": parsed.arch, "lr": parsed.lr,
    "update_freq": parsed.update_freq, "max_tokens": parsed.max_tokens, "warmup": parsed.warmup_updates,
    "max_update": parsed.max_update, "world": parsed.distributed_world_size, "fp16": parsed.fp16,
    "bf16": parsed.bf16, "mask": parsed.mask, "lam": parsed.poisson_lambda, "permute": parsed.permute_sentences,
    "tokens": parsed.tokens_per_sample, "finetune_from": parsed.finetune_from_model}}))
"""


def fake_launcher(tmp_path):
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "torchrun"
    script.write_text(FAKE_TORCHRUN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}


def test_paper_pretraining_recipe(tmp_path, pubmed_bin):
    env = fake_launcher(tmp_path)
    env.update(DATA=str(pubmed_bin), BART=str(tmp_path), NNODES="2", GPUS_PER_NODE="8", MAX_TOKENS="8192")
    res = run(["bash", str(REPO / "examples/pretrain/pretrain.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["launcher"][:6] == ["--nnodes", "2", "--node_rank", "0", "--nproc_per_node", "8"]
    assert got["world"] == 16 and got["task"] == "biomed_denoising" and got["arch"] == "biobart_base"
    # 2560 sequences x 512 tokens per update = 16 GPUs x 8192 tokens x 10
    assert got["update_freq"] == [10] and got["max_tokens"] == 8192
    assert got["lr"] == [1e-4] and got["max_update"] == 120000 and got["warmup"] == 2400
    assert got["fp16"] and (got["mask"], got["lam"], got["permute"], got["tokens"]) == (0.3, 3.0, 0, 512)
    assert got["finetune_from"] == str(tmp_path / "model.pt")


def test_ablation_recipe_switches_sentence_permutation(tmp_path, pubmed_bin):
    env = fake_launcher(tmp_path)
    env.update(DATA=str(pubmed_bin), BART=str(tmp_path), GPUS_PER_NODE="8", ARM="TI+SP", PRECISION="--bf16")
    res = run(["bash", str(REPO / "examples/pretrain/ablation_ti_sp.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["permute"] == 1 and got["max_update"] == 40000 and got["warmup"] == 800 and got["bf16"]


def test_tiny_cpu_recipe_trains(tmp_path, pubmed_bin):
    res = run(["bash", str(REPO / "examples/pretrain/tiny_cpu.sh"), str(pubmed_bin), str(tmp_path / "ckpt"),
               "--log-interval", "1"], env={"UPDATES": "4"})
    assert res.returncode == 0, res.stdout[-3000:]
    assert "num_updates=4" in res.stdout
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


def test_slurm_recipe_launches_one_task_per_gpu(tmp_path, pubmed_bin):
    env = fake_launcher(tmp_path)
    (tmp_path / "bin" / "torchrun").rename(tmp_path / "bin" / "srun")  # the same checker, as srun
    env.update(DATA=str(pubmed_bin), BART=str(tmp_path), SLURM_NTASKS="32", SLURM_SUBMIT_DIR=str(REPO))
    res = run(["bash", str(REPO / "examples/pretrain/slurm.sh")], env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["world"] == 32 and got["update_freq"] == [5] and got["launcher"] == []


# --- seq2seq recipes: BioBART's generation settings (issue 14) ------------------------------
# BioBART's fine-tuning scripts (GanjinZero/BioBART downstream_src/<dataset>_script.sh) call
# Hugging Face generate() with num_beams 5 and these max_length / min_length (their
# --val_max_target_length / --val_min_target_length); the released config.json adds
# no_repeat_ngram_size 3.  MeQSum has no script of its own: MEDIQA-QS's, which trains on it.
HF_SETTINGS = {
    "covid_dialog": (100, 5), "meqsum": (30, 5), "mediqa_qs": (30, 5), "icliniq": (30, 5),
    "healthcaremagic": (30, 5), "mediqa_ans": (128, 20), "mediqa_mas": (128, 20),
}
VOCAB = 60

FAKE_PREPARE = """#!/bin/bash
# Stands in for biobart-prepare-seq2seq: one example per split in the -o folder.
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
mkdir -p "$out"
for s in train valid test; do echo "a question" > "$out/$s.source"; echo "a summary" > "$out/$s.target"; done
"""
FAKE_PYTHON = """#!/bin/bash
# Skips the binarize module; anything else goes to the real interpreter.
[ "$1" = -m ] && [ "$2" = biobart_fairseq.cli.binarize_seq2seq ] && exit 0
[ "$1" = -m ] && [ "$2" = biobart_fairseq.cli.strip_checkpoint ] && exit 0  # fairseq-train wrote none
[ "$1" = -m ] && [ "$2" = biobart_fairseq.schedule ] && {{ echo 10; exit 0; }}  # no binarized data to count
exec {python} "$@"
"""
FAKE_TRAIN = """#!/bin/bash
# Stands in for fairseq-train: makes the --save-dir, trains nothing.
while [ $# -gt 0 ]; do [ "$1" = --save-dir ] && mkdir -p "$2"; shift; done
"""
FAKE_GENERATE = """#!/bin/bash
# Stands in for fairseq-generate: records its argv (NUL-separated), generates nothing.
printf '%s\\0' "$@" > "$FAKE_GENERATE_ARGS"
"""


def recipe_generate_args(tmp_path, dataset):
    """The fairseq-generate argv that examples/<dataset>/run.sh builds, every other step faked."""
    import sys

    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        fakes = {"biobart-prepare-seq2seq": FAKE_PREPARE, "python": FAKE_PYTHON.format(python=sys.executable),
                 "fairseq-train": FAKE_TRAIN, "fairseq-generate": FAKE_GENERATE,
                 "biobart-score": "#!/bin/bash\necho '{}'\n"}
        for name, text in fakes.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
    record = tmp_path / f"{dataset}.args"
    env = {"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}", "GPUS": "",
           "WORK": str(tmp_path / dataset), "FAKE_GENERATE_ARGS": str(record), "INPUTS": "unused"}
    res = run(["bash", str(REPO / "examples" / dataset / "run.sh")], env=env, cwd=str(tmp_path))
    assert record.exists(), res.stdout[-3000:]
    return record.read_text().split("\0")[:-1]


def eos_biased(model_cls, eos, bias):
    """A model class whose next-token log-probabilities get `bias` added to </s>'s logit."""

    class EosBiased(model_cls):
        def get_normalized_probs(self, net_output, log_probs, sample=None):
            logits = net_output[0].clone()
            logits[..., eos] += bias
            return super().get_normalized_probs((logits, *net_output[1:]), log_probs, sample)

    return EosBiased


class FairseqLengths:
    """Text tokens (without </s>) fairseq generates under a generate command's length settings,
    from a tiny random BART whose </s> is (a) never wanted, (b) always wanted: the maximum and
    the minimum length.  Greedy and without n-gram blocking (neither changes how lengths are
    counted), to keep it fast."""

    def __init__(self, gen_argv, data):
        import torch
        from fairseq import options, tasks

        from conftest import TINY_BART

        self.data = data
        self.task = tasks.setup_task(self.args(gen_argv))
        train_args = options.parse_args_and_arch(options.get_training_parser(), [
            str(data), "--task", "biomed_translation", "--source-lang", "source", "--target-lang", "target",
            *TINY_BART])
        base = type(self.task.build_model(train_args))
        self.models = []
        for bias in (-1e3, 1e3):
            torch.manual_seed(0)
            cls = eos_biased(base, self.task.target_dictionary.eos(), bias)
            self.models.append(cls.build_model(train_args, self.task).eval())

    def args(self, gen_argv):
        from fairseq import options

        args = options.parse_args_and_arch(options.get_generation_parser(), [str(self.data), *gen_argv[1:]])
        args.data = str(self.data)  # the recipe's data-bin does not exist here; a dictionary does
        args.beam, args.no_repeat_ngram_size = 1, 0
        return args

    def __call__(self, gen_argv, max_len_b, min_len):
        import torch

        args = self.args(gen_argv)
        args.max_len_b, args.min_len = max_len_b, min_len
        src = torch.tensor([[9, 10, 11, 12, 2]])
        sample = {"net_input": {"src_tokens": src, "src_lengths": torch.tensor([5])}}
        out = []
        for model in self.models:
            gen = self.task.build_generator([model], args)
            hypo = self.task.inference_step(gen, [model], sample)[0][0]["tokens"].tolist()
            assert hypo[-1] == 2 and 2 not in hypo[:-1]
            out.append(len(hypo) - 1)
        return tuple(out)


def hf_text_lengths(max_length, min_length):
    """The same with Hugging Face generate() and a tiny random BART configured like the released
    BioBART (forced <s> first and </s> at max_length, decoder start </s>), as BioBART's scripts
    call it: the decoded sequence is </s> <s> text </s>.  Greedy, no n-gram blocking, as above."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, LogitsProcessor, LogitsProcessorList

    class EosBias(LogitsProcessor):
        def __init__(self, bias):
            self.bias = bias

        def __call__(self, input_ids, scores):
            scores = scores.clone()
            scores[:, 2] += self.bias
            return scores

    torch.manual_seed(0)
    cfg = BartConfig(vocab_size=VOCAB, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=256,
                     pad_token_id=1, bos_token_id=0, eos_token_id=2)
    model = BartForConditionalGeneration(cfg).eval()
    out = []
    for bias in (-1e3, 1e3):
        seq = model.generate(torch.tensor([[0, 9, 10, 11, 12, 2]]), num_beams=1, do_sample=False,
                             max_length=max_length, min_length=min_length,
                             decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2,
                             pad_token_id=1, eos_token_id=2,
                             logits_processor=LogitsProcessorList([EosBias(bias)]))[0].tolist()
        assert seq[:2] == [2, 0] and seq[-1] == 2 and 2 not in seq[1:-1]
        out.append(len(seq) - 3)
    return tuple(out)


def test_seq2seq_recipes_generate_as_biobart(tmp_path):
    """Every recipe's fairseq-generate command, read by fairseq's own parser: beam 5, no length
    penalty, trigram blocking, and output lengths that give the same number of text tokens as
    Hugging Face generate() with BioBART's max_length/min_length for that dataset (both measured
    on tiny random models whose </s> is never / always wanted)."""
    from fairseq import options

    pytest.importorskip("transformers")
    data = tmp_path / "dict"
    data.mkdir()
    for side in ("source", "target"):
        (data / f"dict.{side}.txt").write_text("".join(f"w{i} 1\n" for i in range(VOCAB - 4)))
    # How each library counts, measured at two small settings each (a decoding step costs 10-70 ms
    # on a loaded 2-core machine): Hugging Face's text is max_length - a / min_length - b tokens,
    # fairseq's max_len_b - c / min_len - d, with the same offsets at both settings.
    hf = {(mx - n_max, mn - n_min) for mx, mn in ((12, 6), (17, 9)) for n_max, n_min in [hf_text_lengths(mx, mn)]}
    argvs = {dataset: recipe_generate_args(tmp_path, dataset) for dataset in HF_SETTINGS}
    fairseq_lengths = FairseqLengths(argvs["covid_dialog"], data)
    fs = {(mx - n_max, mn - n_min) for mx, mn in ((9, 4), (14, 7))
          for n_max, n_min in [fairseq_lengths(argvs["covid_dialog"], mx, mn)]}
    assert len(hf) == 1 and len(fs) == 1, (hf, fs)
    (a, b), (c, d) = hf.pop(), fs.pop()
    for dataset, (max_length, min_length) in HF_SETTINGS.items():
        args = options.parse_args_and_arch(options.get_generation_parser(), argvs[dataset])
        assert (args.beam, args.lenpen, args.no_repeat_ngram_size, args.max_len_a) == (5, 1.0, 3, 0), dataset
        # the same text lengths as BioBART's Hugging Face settings for this dataset
        assert (args.max_len_b - c, args.min_len - d) == (max_length - a, min_length - b), dataset
