"""BARTNER decoding speed: ``BartNerModel.generate`` (fairseq ``incremental_state``, beams kept
in tensors) against the decoder it replaced (the whole prefix re-run through the decoder at
every step, beams kept per sentence in Python lists with ``.item()``/``.tolist()`` per sentence
and step), both with BARTNER's length limit, measured in the same run on the same model and
sentences.  The outputs must be identical; the script stops otherwise.

Data: real GENIA dev sentences (``../shared/data/genia_nested_ner``), a sentencepiece BPE
trained on them, ``biobart-prepare-ner``; the model is a BART of the given size with the pointer
head, trained for ``--train-steps`` on 64 sentences so that its sequences look like a real
model's (entities, then eos), not an untrained model's run to the limit.

    python benchmarks/bartner_decode.py                      # d=256, 3+3 layers, CPU
    python benchmarks/bartner_decode.py --dim 768 --layers 6 --device cuda --sentences 512
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GENIA = REPO.parent / "shared" / "data" / "genia_nested_ner"
SOS, EOS = 0, 1


@torch.no_grad()
def full_prefix_generate(model, src_tokens, src_lengths, word_first, word_last, target_type="word", beam=1,
                         max_len_a=0.6, max_len_b=10, len_penalty=1.0):
    """The decoder ``generate`` replaced, given BARTNER's limit (eos alone at the last position)."""
    bsz, k, off = src_tokens.size(0), beam, model.n_types + 2
    encoder_out = model.encoder(src_tokens, src_lengths=src_lengths)
    src_feat = model.source_features(encoder_out, src_tokens)
    order = torch.arange(bsz, device=src_tokens.device).repeat_interleave(k)
    encoder_out = model.encoder.reorder_encoder_out(encoder_out, order)
    src, feat = src_tokens[order], src_feat[order]
    ptr_ok = model.pointer_positions(src_tokens, src_lengths)[order]
    first, last = word_first.to(ptr_ok.device)[order], word_last.to(ptr_ok.device)[order]
    limit = model.output_positions(src_lengths, max_len_a, max_len_b).tolist()
    limit_rows = torch.tensor(limit, device=src.device)[order]
    tokens = torch.full((bsz * k, 1), SOS, dtype=torch.long, device=src.device)
    scores = torch.full((bsz, k), float("-inf"), device=src.device)
    scores[:, 0] = 0
    n_open = torch.zeros(bsz * k, dtype=torch.long, device=src.device)
    last_ptr = torch.full((bsz * k,), -1, dtype=torch.long, device=src.device)
    ended = [[] for _ in range(bsz)]
    done = [False] * bsz
    for step in range(max(limit)):
        h, _ = model.decoder(model.decoder_ids(tokens, src), encoder_out=encoder_out, features_only=True)
        logits = model.scores(h[:, -1:], feat, ptr_ok)[:, 0]
        mask = model.allowed(n_open, last_ptr, ptr_ok, first, last, target_type)
        at_limit = limit_rows == step + 1
        mask[at_limit] = False
        mask[at_limit, EOS] = True
        lprobs = F.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
        vocab = lprobs.size(1)
        top_s, top_i = (scores.view(-1, 1) + lprobs).view(bsz, k * vocab).topk(min(2 * k, k * vocab), dim=1)
        rows, toks, new_scores = [], [], []
        for b in range(bsz):
            picks = []
            if not done[b]:
                for rank, (sc, idx) in enumerate(zip(top_s[b].tolist(), top_i[b].tolist())):
                    if sc == float("-inf"):
                        break
                    j, t = divmod(idx, vocab)
                    if t == EOS:
                        if rank >= k:
                            continue
                        seq = tokens[b * k + j, 1:].tolist() + [EOS]
                        ended[b].append((sc / (step + 1) ** len_penalty, -len(ended[b]), seq))
                        if len(ended[b]) >= k:
                            break
                    else:
                        picks.append((b * k + j, t, sc))
                        if len(picks) == k:
                            break
                if len(ended[b]) >= k or not picks:
                    done[b], picks = True, []
            while len(picks) < k:
                picks.append((b * k, SOS, float("-inf")))
            for r, t, sc in picks:
                rows.append(r)
                toks.append(t)
                new_scores.append(sc)
        if all(done):
            break
        rows_t = torch.tensor(rows, device=src.device)
        toks_t = torch.tensor(toks, device=src.device)
        tokens = torch.cat([tokens[rows_t], toks_t[:, None]], dim=1)
        scores = torch.tensor(new_scores, device=src.device).view(bsz, k)
        is_ptr = toks_t >= off
        n_open = torch.where(is_ptr, n_open[rows_t] + 1, torch.zeros_like(n_open))
        last_ptr = torch.where(is_ptr, toks_t - off, torch.full_like(last_ptr, -1))
    return [max(e)[2] if e else [] for e in ended]


def build(tmp, args):
    """Data folder from real GENIA dev sentences and a briefly trained model of the given size."""
    import sentencepiece as spm
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from biobart_fairseq.cli import prepare_ner
    from biobart_fairseq.data import ner_formats

    sents = ner_formats.read(GENIA / "dev.jsonlines", "genia")
    with open(os.path.join(tmp, "text.txt"), "w", encoding="utf-8") as f:
        f.writelines(" ".join(s["tokens"]) + "\n" for s in sents)
    spm.SentencePieceTrainer.train(input=os.path.join(tmp, "text.txt"), model_prefix=os.path.join(tmp, "spm"),
                                   vocab_size=2000, model_type="bpe", byte_fallback=True, minloglevel=2)
    ner_formats.write(os.path.join(tmp, "train.jsonl"), sents[:64])
    ner_formats.write(os.path.join(tmp, "test.jsonl"), sents[64:64 + args.sentences])
    data = os.path.join(tmp, "data")
    rc = prepare_ner.main(["--format", "jsonl", "--input", os.path.join(tmp, "train.jsonl"),
                           os.path.join(tmp, "test.jsonl"), "-o", data, "--bpe", "sentencepiece", "--spm-model", os.path.join(tmp, "spm.model")])
    assert rc == 0
    heads = max(args.dim // 64, 2)
    flags = [data, "--task", "bartner_ner", "--criterion", "bartner_loss", "--arch", "bartner_base",
             "--target-type", args.target_type, "--dropout", "0", "--pointer-dropout", "0",
             "--encoder-layers", str(args.layers), "--decoder-layers", str(args.layers),
             "--encoder-embed-dim", str(args.dim), "--decoder-embed-dim", str(args.dim),
             "--encoder-ffn-embed-dim", str(4 * args.dim), "--decoder-ffn-embed-dim", str(4 * args.dim),
             "--encoder-attention-heads", str(heads), "--decoder-attention-heads", str(heads)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), flags))
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(0)
    model = task.build_model(cfg.model).to(args.device)
    train(task, model, args)
    return task, model


def batches(task, split, size, device):
    from fairseq import utils

    task.load_dataset(split)
    ds = task.datasets[split]
    order = ds.ordered_indices()
    out = []
    for i in range(0, len(order), size):
        sample = ds.collater([ds[j] for j in order[i: i + size]])
        out.append(utils.move_to_cuda(sample, device=torch.device(device)) if device == "cuda" else sample)
    return out


def train(task, model, args):
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    data = batches(task, "train", 16, args.device)
    for step in range(args.train_steps):
        b = data[step % len(data)]
        logits, _ = model(**b["net_input"])
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), b["target"].view(-1), ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def timed(fn, model, data, args, beam):
    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    out = []
    sync()
    t0 = time.perf_counter()
    for b in data:
        net = b["net_input"]
        out.extend(fn(model, net["src_tokens"], net["src_lengths"], b["word_first"], b["word_last"],
                      target_type=args.target_type, beam=beam, max_len_a=args.max_len_a, max_len_b=10))
    sync()
    return time.perf_counter() - t0, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=256, help="GENIA dev sentences decoded (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dim", type=int, default=256, help="model width (default: %(default)s)")
    p.add_argument("--layers", type=int, default=3, help="encoder and decoder layers (default: %(default)s)")
    p.add_argument("--target-type", default="span", choices=("word", "span", "bpe"))
    p.add_argument("--max-len-a", type=float, default=0.5, help="BARTNER's GENIA setting (default: %(default)s)")
    p.add_argument("--beams", default="1,4", help="beam sizes to time (default: %(default)s)")
    p.add_argument("--train-steps", type=int, default=150)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if not GENIA.is_dir():
        sys.exit(f"GENIA not found at {GENIA}")
    torch.set_num_threads(args.threads)
    from biobart_fairseq.models.bartner import BartNerModel

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = (f"CPU {os.cpu_count()} cores ({platform.processor() or platform.machine()}), torch {args.threads} "
               f"threads, load average {load:.1f}")
    if args.device == "cuda":
        machine += f", GPU {torch.cuda.get_device_name()}"
    print(f"[bartner-decode] {machine}; model d={args.dim}, {args.layers}+{args.layers} layers, "
          f"{args.sentences} GENIA dev sentences, batch {args.batch_size}, {args.target_type} targets", file=sys.stderr)
    results = {"machine": machine, "dim": args.dim, "layers": args.layers, "sentences": args.sentences, "runs": []}
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        with torch.enable_grad():
            task, model = build(tmp, args)
        data = batches(task, "test", args.batch_size, args.device)
        for beam in (int(x) for x in args.beams.split(",")):
            timed(BartNerModel.generate, model, data[:1], args, beam)  # warm-up
            t_old, old = timed(full_prefix_generate, model, data, args, beam)
            t_new, new = timed(BartNerModel.generate, model, data, args, beam)
            same = sum(a == b for a, b in zip(old, new))
            mean_len = sum(map(len, new)) / len(new)
            run = {"beam": beam, "full_prefix_s": round(t_old, 3), "incremental_s": round(t_new, 3),
                   "speedup": round(t_old / t_new, 2), "identical": f"{same}/{len(new)}",
                   "mean_output_len": round(mean_len, 1)}
            results["runs"].append(run)
            print(f"[bartner-decode] beam {beam}: full prefix {t_old:.2f} s, incremental {t_new:.2f} s -> "
                  f"{t_old / t_new:.2f}x; outputs identical {same}/{len(new)}; mean output length {mean_len:.1f}",
                  file=sys.stderr)
            if same != len(new):
                sys.exit("outputs differ")
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
