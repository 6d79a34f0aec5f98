"""BARTNER decoding: the incremental, tensor-bookkept decoder against a plain reference, and
BARTNER's generator length (output positions, forced eos).

The reference below decodes one sentence at a time, re-runs the decoder over the whole prefix
every step and keeps beams in Python lists; it is written from the rules stated in
``BartNerModel.generate`` (2k candidates read best first, an eos among the k best ends a
hypothesis, a sentence is done when k ended or no beam is left, eos alone at the limit).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_bartner import CADEC, GENIA, ner_data, setup  # noqa: F401  (ner_data is a fixture)
from biobart_fairseq.data import ner_formats
from biobart_fairseq.data.ner_dataset import NerDataset
from biobart_fairseq.models.bartner import BartNerModel

EOS, SOS = 1, 0


pytestmark = pytest.mark.usefixtures("one_thread")


def bartner_positions(src_len, a, b):
    """BARTNER's generator: sequences (sos included) of at most b + int(float32(a) * float32(src_len))
    indices, the last a forced eos; so this many after sos."""
    return max(int(np.float32(a) * np.float32(src_len)) + b - 1, 1)


def test_output_positions_as_bartner_generator():
    lengths = torch.tensor([90, 20, 7, 1])
    # 0.7 * 90: 62.99999999999999 in float64 but 63.0 in float32, which BARTNER's generator uses
    assert BartNerModel.output_positions(lengths, 0.7, 10).tolist() == [72, 23, 13, 9]
    assert [bartner_positions(n, 0.7, 10) for n in lengths.tolist()] == [72, 23, 13, 9]
    assert BartNerModel.output_positions(lengths, 0.0, 1).tolist() == [1, 1, 1, 1]


@torch.no_grad()
def reference_generate(model, src, first, last, target_type, k, a, b, lp=1.0):
    """One unpadded sentence: best index sequence after sos."""
    src = src[None]
    enc = model.encoder(src, src_lengths=torch.tensor([src.size(1)]))
    feat = model.source_features(enc, src).expand(k, -1, -1)
    enc = model.encoder.reorder_encoder_out(enc, torch.zeros(k, dtype=torch.long))
    srck = src.expand(k, -1)
    ptr_ok = model.pointer_positions(src, torch.tensor([src.size(1)])).expand(k, -1)
    first, last = first[None].expand(k, -1), last[None].expand(k, -1)
    limit = bartner_positions(src.size(1), a, b)
    f32 = np.float32  # the decoder sums and compares float32 scores: so does the reference
    beams = [([], f32(0))] + [([], f32("-inf"))] * (k - 1)  # (indices after sos, summed log-prob)
    ended = []  # (normalised score, order of ending, sequence)
    for step in range(limit):
        tokens = torch.tensor([[SOS] + seq for seq, _ in beams])
        h, _ = model.decoder(model.decoder_ids(tokens, srck), encoder_out=enc, features_only=True)
        logits = model.scores(h[:, -1:], feat, ptr_ok)[:, 0]
        n_open = torch.tensor([len(seq) - max([i + 1 for i, t in enumerate(seq) if t < model.n_types + 2] + [0])
                               for seq, _ in beams])
        last_ptr = torch.tensor([seq[-1] - model.n_types - 2 if n else -1
                                 for (seq, _), n in zip(beams, n_open.tolist())])
        mask = model.allowed(n_open, last_ptr, ptr_ok, first, last, target_type)
        if step == limit - 1:
            mask = torch.zeros_like(mask)
            mask[:, EOS] = True
        lprobs = F.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
        cands = sorted(((sc + lp_, j, t) for j, (_, sc) in enumerate(beams) for t, lp_ in enumerate(lprobs[j].numpy())),
                       key=lambda c: -c[0])[: 2 * k]
        picks = []
        for rank, (sc, j, t) in enumerate(cands):
            if sc == float("-inf"):
                break
            if t == EOS:
                if rank < k:
                    ended.append((sc / f32((step + 1) ** lp), len(ended), beams[j][0] + [EOS]))
                    if len(ended) >= k:
                        break
            else:
                picks.append((beams[j][0] + [t], sc))
                if len(picks) == k:
                    break
        if len(ended) >= k or not picks:
            break
        beams = picks + [([], f32("-inf"))] * (k - len(picks))
    return max(ended, key=lambda e: (e[0], -e[1]))[2]


def real_sentences(task):
    """Unseen real sentences: 20 GENIA dev sentences of up to 40 words and the 4 CADEC ones
    (entities of types the tiny training set lacks left out: only their targets need them)."""
    genia = [s for s in ner_formats.read(GENIA / "dev.jsonlines", "genia")[100:] if len(s["tokens"]) <= 40][:20]
    sents = genia + ner_formats.read(CADEC / "dev.txt", "dai")
    return [dict(s, entities=[e for e in s["entities"] if e["type"] in task.types]) for s in sents]


def train_briefly(task, model, steps=30):
    task.load_dataset("train")
    ds = task.datasets["train"]
    batch = ds.collater([ds[i] for i in range(len(ds))])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        logits, _ = model(**batch["net_input"])
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), batch["target"].view(-1), ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module")
def trained(ner_data):
    """A tiny model trained briefly on the 11 sentences: not perfect, so it decodes unseen
    sentences into varied sequences (entities, early eos, some reaching the limit)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    task, model, _ = setup(ner_data, "--dropout", "0", "--pointer-dropout", "0")
    train_briefly(task, model)
    torch.set_num_threads(n)
    model.double()  # both decoders then agree to ~1e-15: no near-tie flips from summation order
    return task, model


@pytest.mark.parametrize("target_type", ["word", "span"])
def test_incremental_decoder_equals_full_prefix_reference(trained, target_type):
    task, model = trained
    sents = real_sentences(task)
    examples = task.encode(sents)
    ds = NerDataset(examples, task.dictionary.pad())
    sample = ds.collater([ds[i] for i in range(len(ds))])
    net = sample["net_input"]
    n_ended_early = 0
    for beam, a in ((1, 0.6), (3, 0.3)):
        got = model.generate(net["src_tokens"], net["src_lengths"], sample["word_first"], sample["word_last"],
                             target_type=target_type, beam=beam, max_len_a=a, max_len_b=10)
        for i, ex in enumerate(examples):
            first = sample["word_first"][i, : len(ex["source"])]
            last = sample["word_last"][i, : len(ex["source"])]
            want = reference_generate(model, ex["source"], first, last, target_type, beam, a, 10)
            assert got[i] == want, (beam, i)
            assert got[i][-1] == EOS and len(got[i]) <= bartner_positions(len(ex["source"]), a, 10)
            n_ended_early += len(got[i]) < bartner_positions(len(ex["source"]), a, 10)
    # a non-trivial model: it predicts entities and ends most sequences by itself
    assert sum(len(s) > 1 for s in got) >= len(got) // 2 and n_ended_early >= len(examples)


def test_length_limit_forces_eos(ner_data):
    """An untrained model rarely ends by itself: at BARTNER's limit eos is forced, never cut."""
    task, model, _ = setup(ner_data)
    task.load_dataset("train")
    ds = task.datasets["train"]
    sample = ds.collater([ds[i] for i in range(len(ds))])
    net = sample["net_input"]
    model.eval()
    for beam in (1, 2):
        for b in (2, 3, 6):
            seqs = model.generate(net["src_tokens"], net["src_lengths"], sample["word_first"], sample["word_last"],
                                  beam=beam, max_len_a=0, max_len_b=b)
            assert all(s[-1] == EOS and 1 <= len(s) <= b - 1 for s in seqs), (beam, b, seqs)
            if b == 6:
                assert any(len(s) == 5 for s in seqs)  # the limit is reached, and ends with eos


def test_loss_logs_as_cross_entropy_and_honours_sentence_avg(ner_data):
    """bartner_loss keeps only its forward: --sentence-avg and fairseq's cross_entropy logging apply."""
    import math

    from fairseq import metrics

    task, model, criterion = setup(ner_data, "--sentence-avg")
    task.load_dataset("train")
    ds = task.datasets["train"]
    sample = ds.collater([ds[i] for i in range(4)])
    model.eval()
    loss, size, log = criterion(model, sample)
    logits, _ = model(**sample["net_input"])
    lp = F.log_softmax(logits.float(), dim=-1)
    tgt = sample["target"]
    want = -lp.gather(-1, tgt.clamp(min=0)[..., None])[..., 0][tgt >= 0].sum()
    ntokens = int((tgt >= 0).sum())
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert size == log["sample_size"] == 4 and log["ntokens"] == ntokens
    with metrics.aggregate() as agg:
        type(criterion).reduce_metrics([log])
    got = agg.get_smoothed_values()
    assert got["loss"] == pytest.approx(want.item() / 4 / math.log(2), abs=1e-3)
    assert got["nll_loss"] == pytest.approx(want.item() / ntokens / math.log(2), abs=1e-3)
    assert got["ppl"] == pytest.approx(2 ** got["nll_loss"], rel=1e-2)
