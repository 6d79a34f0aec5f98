"""Generative entity linking: readers, preparation of the real NCBI-disease corpus (Table 1
counts), the biomed_entity_linking dataset, trie-constrained batched decoding of a tiny
model over the real test set (every output a KB name), and Recall@k."""

import json
import random

import numpy as np
import pytest
import torch

from biobart_fairseq.data import el_formats as F
from biobart_fairseq.metrics.recall_at_k import average_folds, recall_at_k

from conftest import REPO, SHARED_DATA, TINY_BART, run

NCBI = SHARED_DATA / "ncbi_disease"


# --- metric ------------------------------------------------------------------------------------
def test_recall_at_k_hand_computed():
    ranked = [
        [["A"], ["B"]],                                  # gold A at rank 1: hit@1, hit@5
        [["X"], ["B", "C"], ["D"]],                      # composite gold {C, E}: C at rank 2 -> hit@5 only
        [["X"], ["Y"], ["Z"], ["W"], ["V"], ["D"]],      # gold D at rank 6: miss@5
        [],                                              # no prediction: a miss, still counted
    ]
    gold = [["A"], ["C", "E"], ["D"], ["F"]]
    assert recall_at_k(ranked, gold) == {"R@1": 0.25, "R@5": 0.5, "n": 4}
    folds = average_folds([{"R@1": 0.5, "R@5": 1.0, "n": 2}, {"R@1": 0.0, "R@5": 0.5, "n": 4}])
    assert folds == {"R@1": 0.25, "R@5": 0.75, "folds": 2, "n": 6}
    with pytest.raises(ValueError):
        recall_at_k(ranked, gold[:2])


def test_score_maps_token_ids_to_cuis():
    from biobart_fairseq.cli.el_eval import score

    kb = {(5, 6): ("breast cancer", ["D001943"]), (7,): ("ovarian cancer", ["D010051"])}
    ranked = [[((7,), -1.0), ((5, 6), -2.0)], [((9, 9), -0.5)]]
    meta = [{"cuis": ["D001943", "D010051"]}, {"cuis": ["D001943"]}]
    res, recs = score(ranked, meta, kb)
    assert (res["R@1"], res["R@5"], res["outputs_not_in_kb"]) == (0.5, 0.5, 1)
    assert recs[0]["names"] == ["ovarian cancer", "breast cancer"] and recs[1]["names"] == [None]


# --- readers ------------------------------------------------------------------------------------
def test_pubtator_reader_ids_composites_and_bad_records(tmp_path):
    title, abstract = "Breast and ovarian cancer in BRCA1 carriers.", "Copper toxicosis is rare."
    text = title + " " + abstract
    i = text.index("Copper toxicosis")
    lines = [
        f"1|t|{title}", f"1|a|{abstract}",
        f"1\t0\t25\tBreast and ovarian cancer\tCompositeMention\tD001943|D010051",
        f"1\t{i}\t{i + 16}\tCopper toxicosis\tModifier\tOMIM:215600",
        f"1\t{i}\t{i + 6}\tCopper\tModifier\t MESH:D003300+D001",
        "1\t3\t9\twrong words\tModifier\tD000001",       # offsets do not give the mention
        "1\tCID\tD1\tD2",                                  # relation line: ignored
        "", "2|t|No mentions.", "2|a|", "",
    ]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    recs = list(F.read_pubtator(path))
    ms = [r for r in recs if isinstance(r, F.Mention)]
    bad = [r for r in recs if isinstance(r, F.BadRecord)]
    assert [m.cuis for m in ms] == [["D001943", "D010051"], ["OMIM:215600"], ["D003300", "D001"]]
    assert all(m.text[m.start:m.end] == m.mention for m in ms)
    assert len(bad) == 1 and bad[0].line == 6 and str(path) in str(bad[0])


def test_pubtator_reader_skips_a_repeated_document(tmp_path):
    doc = ["7|t|Gout.", "7|a|Gout flares.", "7\t0\t4\tGout\tSpecificDisease\tD006073"]
    other = ["8|t|Rickets.", "8|a|", "8\t0\t7\tRickets\tSpecificDisease\tD012279"]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(doc + [""] + other + [""] + doc + [""]) + "\n")
    recs = list(F.read_pubtator(path))
    assert [r.mention for r in recs if isinstance(r, F.Mention)] == ["Gout", "Rickets"]
    rep = [r for r in recs if isinstance(r, F.BadRecord)]
    assert len(rep) == 1 and isinstance(rep[0], F.RepeatedDocument) and rep[0].line == 9
    assert "first at line 1" in str(rep[0])


def test_drop_omim_if_mixed():
    assert F.drop_omim_if_mixed(["D003300", "OMIM:215600"]) == ["D003300"]
    assert F.drop_omim_if_mixed(["OMIM:1", "OMIM:2"]) == ["OMIM:1", "OMIM:2"]
    assert F.drop_omim_if_mixed(["D1", "D2", "OMIM:3"]) == ["D1", "D2"]
    assert F.drop_omim_if_mixed(["OMIM:1"]) == ["OMIM:1"]


def test_kb_reader_and_name_index(tmp_path):
    kb = tmp_path / "medic.txt"
    kb.write_text("C567755|613097||Tooth Agenesis, Selective, 6|STHAG6\nD001||Shared Name|Only-One\nD002||shared name\n")
    pairs = [p for p in F.read_kb(kb) if not isinstance(p, F.BadRecord)]
    assert ("OMIM:613097", "STHAG6") in pairs and ("C567755", "Tooth Agenesis, Selective, 6") in pairs
    cui_names, name_cuis = F.build_name_index(pairs)
    assert name_cuis["tooth agenesis selective 6"] == ["C567755", "OMIM:613097"]
    assert name_cuis["shared name"] == ["D001", "D002"] and name_cuis["only one"] == ["D001"]
    # GenBioEL's rule: a shared name stays with the concept that has the fewest names
    _, fewest = F.build_name_index(pairs, ambiguous="fewest")
    assert fewest["shared name"] == ["D002"]


def test_cometa_and_askapatient_readers(tmp_path):
    cometa = tmp_path / "test.csv"
    cometa.write_text("ID\tTerm\tGeneral SNOMED ID\tSpecific SNOMED ID\tExample\n"
                      "7\tHeadache\t25064002\t1\tI had a bad headache today\n"
                      "8\t\t1\t1\tempty term\n")
    recs = list(F.read_cometa(cometa))
    m = recs[0]
    assert (m.mention, m.cuis, m.text[m.start:m.end]) == ("headache", ["25064002"], "headache")
    assert isinstance(recs[1], F.BadRecord) and recs[1].line == 3
    aap = tmp_path / "AskAPatient.fold-0.test.txt"
    aap.write_text("10019211\theadache\tsplitting head\nbroken line\n")
    recs = list(F.read_askapatient(aap))
    assert recs[0].cuis == ["10019211"] and recs[0].mention == "splitting head"
    assert isinstance(recs[1], F.BadRecord) and recs[1].line == 2


def test_source_window_markers_and_prefix():
    from biobart_fairseq.data.el_prepare import make_prefix, make_source

    words = [f"w{i}" for i in range(20)]
    text = " ".join(words[:10]) + " Copper Toxicosis " + " ".join(words[10:])
    m = F.Mention("d", text, text.index("Copper"), text.index("Copper") + 16, "Copper Toxicosis", ["X"])
    src = make_source(m, 8).split()
    assert src == ["w8", "w9", "START", "copper", "toxicosis", "END", "w10", "w11"]
    assert make_source(m, 1000).split() == [w.lower() for w in words[:10]] + ["START", "copper", "toxicosis", "END"] + words[10:]
    assert make_prefix(m) == "copper toxicosis is"


# --- the real NCBI-disease corpus ------------------------------------------------------------------
@pytest.fixture(scope="module")
def ncbi(tmp_path_factory):
    if not NCBI.is_dir():
        pytest.skip(f"NCBI-disease corpus not found at {NCBI}")
    from biobart_fairseq.cli import prepare_el

    out = tmp_path_factory.mktemp("ncbi_el")
    rc = prepare_el.main(["--dataset", "ncbi", "--input", str(NCBI), "--kb", str(NCBI / "dictionary" / "medic_06Jul2012.txt"),
                          "-o", str(out), "--bpe", "sentencepiece", "--vocab-size", "500", "--max-context-words", "32",
                          "--workers", "1"])
    assert rc == 0
    return out


def test_ncbi_counts_match_table1(ncbi):
    report = json.loads((ncbi / "report.json").read_text())
    # Table 1: train 5,784, dev 787, test 960, all exactly.  Train is built the BioSyn/GenBioEL
    # way: train (5,145 annotations, of which 11 in a second copy of PMID 8528200, skipped) +
    # dev (787), without composite mentions; 8 train mentions whose ids mix MeSH and OMIM keep
    # the MeSH id only and so are not composite: 5,134 - 107 + 787 - 30 = 5,784.
    assert report["mentions"] == {"train": 5784, "dev": 787, "test": 960}
    assert report["bad_records"] == []
    assert len(report["repeated_documents"]) == 1 and "document 8528200" in report["repeated_documents"][0]
    test = [r for r in F.read_jsonl(ncbi / "test.jsonl")]
    assert all(isinstance(m, F.Mention) and m.text[m.start:m.end] == m.mention for m in test)
    # composite mentions kept for evaluation: 15 in the file, 2 of them MeSH + OMIM -> MeSH
    assert sum(len(m.cuis) > 1 for m in test) == 13
    train = list(F.read_jsonl(ncbi / "train.jsonl"))
    assert all(len(m.cuis) == 1 for m in train)
    kb = report["kb"][str(ncbi)]
    assert kb["unk_tokens"] == 0 and kb["names"] > 70_000
    for split, n in (("train", 5784), ("valid", 787), ("test", 960)):
        assert len(np.load(ncbi / "bin" / f"{split}.prefix_len.npy")) == n


@pytest.fixture(scope="module")
def ncbi_model(ncbi, tmp_path_factory):
    save = tmp_path_factory.mktemp("ncbi_ckpt")
    res = run(["fairseq-train", str(ncbi / "bin"), "--user-dir", str(REPO / "biobart_fairseq"),
               "--task", "biomed_entity_linking", *TINY_BART, "--share-all-embeddings",
               "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
               "--optimizer", "adam", "--lr", "3e-3", "--max-tokens", "4096", "--max-update", "15",
               "--cpu", "--num-workers", "0", "--seed", "1", "--save-dir", str(save), "--no-epoch-checkpoints",
               "--log-format", "simple", "--log-interval", "5", "--no-progress-bar", "--validate-interval-updates", "15"],
              env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-3000:]
    assert "valid on 'valid' subset" in res.stdout
    return save / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def loaded(ncbi, ncbi_model):
    torch.set_num_threads(1)
    from biobart_fairseq.cli import el_eval

    models, task = el_eval.load(str(ncbi / "bin"), str(ncbi_model))
    task.load_dataset("test")
    return models, task


def test_batches_pad_the_prefix_in_the_target(loaded):
    _, task = loaded
    ds = task.dataset("test")
    d = task.target_dictionary
    ids = [5, 0, 17, 3]
    batch = ds.collater([ds[i] for i in ids])
    for row, sid in enumerate(batch["id"].tolist()):
        plen = int(ds.prefix_lens[sid])
        full = ds.dataset.tgt[sid].tolist()  # prefix + name + </s>
        prev = batch["net_input"]["prev_output_tokens"][row].tolist()
        tgt = batch["target"][row].tolist()
        assert prev[:len(full)] == [d.eos()] + full[:-1]        # </s> + prefix + name
        assert tgt[:plen] == [d.pad()] * plen                   # prefix: not trained on
        assert tgt[plen:len(full)] == full[plen:]                # name + </s>
        assert batch["prefix_lens"][row] == plen
    assert batch["ntokens"] == sum(len(ds.dataset.tgt[i]) - ds.prefix_lens[i] for i in ids)


def _decode_ids(task, models, gen, ds, chunks):
    out = {}
    for chunk in chunks:
        sample = ds.collater([ds[i] for i in chunk])
        for sid, plen, hs in zip(sample["id"].tolist(), sample["prefix_lens"].tolist(),
                                 task.inference_step(gen, models, sample)):
            assert all(h["tokens"][:plen].tolist() == ds.prefix_tokens(sid) for h in hs)  # own prefix forced
            scores = [h["score"] for h in hs]
            assert scores == sorted(scores, reverse=True)  # ranked by the synonym's score
            out[sid] = [tuple(h["tokens"][plen:-1].tolist()) for h in hs]
    return out


def test_prefix_mapping_is_right_for_any_batch_order(loaded):
    from biobart_fairseq.cli import el_eval

    models, task = loaded
    ds = task.dataset("test")
    ids = list(range(40))
    gen = el_eval.build_generator(task, models, beam=5)
    one = _decode_ids(task, models, gen, ds, [ids])
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    other = _decode_ids(task, models, gen, ds, [shuffled[k:k + 7] for k in range(0, 40, 7)])
    assert one == other
    assert all(h + (task.target_dictionary.eos(),) in task.trie for hs in one.values() for h in hs)


def test_decoding_the_real_test_set_gives_only_kb_names(ncbi, ncbi_model, tmp_path):
    from biobart_fairseq.cli import el_eval

    preds = tmp_path / "preds.jsonl"
    results = tmp_path / "results.json"
    rc = el_eval.main([str(ncbi / "bin"), "--path", str(ncbi_model), "--split", "test", "--beam", "5",
                       "--batch-size", "64", "--threads", "1", "-o", str(preds), "--results", str(results)])
    assert rc == 0
    res = json.loads(results.read_text())
    assert res["n"] == 960 and res["outputs"] == 960 * 5
    assert res["outputs_not_in_kb"] == 0  # 100 % of the outputs are KB names
    assert 0.0 <= res["R@1"] <= res["R@5"] <= 1.0
    kb_names = {line.split("\t")[0] for line in (ncbi / "bin" / "kb_names.tsv").read_text().splitlines()}
    recs = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(recs) == 960 and all(len(r["names"]) == 5 and all(n in kb_names for n in r["names"]) for r in recs)
    # the reported metric is the hand-checkable definition applied to the written predictions
    assert recall_at_k([r["cuis"] for r in recs], [r["gold"] for r in recs]) == {k: res[k] for k in ("R@1", "R@5", "n")}


def _run_recipe_with_stubs(name, tmp_path):
    """Run examples/el_NAME/run.sh with stand-ins for the heavy commands: each appends its name
    and arguments (one per line, so paths with spaces survive) to calls.log, and el-eval writes
    a results file.  -> the recipe's calls, each as [command, arg, ...], in order."""
    import os
    import stat
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    stub = ("#!/usr/bin/env bash\n{ basename \"$0\"; printf '%s\\n' \"$@\"; echo '<end>'; } >> " + str(log) + "\n"
            "for ((i=1; i<=$#; i++)); do if [ \"${!i}\" = --results ]; then j=$((i+1)); "
            "mkdir -p \"$(dirname \"${!j}\")\"; echo '{\"R@1\": 0.5}' > \"${!j}\"; fi; done\n")
    for cmd in ("biobart-prepare-el", "fairseq-train", "biobart-el-eval"):
        (bin_dir / cmd).write_text(stub)
        (bin_dir / cmd).chmod((bin_dir / cmd).stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "OUT": str(tmp_path / "out"), "SAVE_DIR": str(tmp_path / "save"), "GPUS": ""}
    res = run(["bash", str(REPO / "examples" / f"el_{name}" / "run.sh")], env=env, cwd=str(REPO))
    assert res.returncode == 0, res.stdout[-2000:]
    calls, call = [], []
    for line in log.read_text().splitlines():
        if line == "<end>":
            calls.append(call)
            call = []
        else:
            call.append(line)
    return calls


@pytest.mark.parametrize("name,lr,steps,warmup,beam", [
    ("ncbi", 3e-7, 20000, 0, 5), ("bc5cdr", 1e-5, 20000, 500, 5),
    ("cometa", 1e-5, 40000, 500, 5), ("askapatient", 5e-6, 30000, 500, 5),
    ("medmentions", 1e-5, 100000, 500, 16),
])
def test_recipes_have_genbioel_hyperparameters(name, lr, steps, warmup, beam, tmp_path):
    """GenBioEL's per-dataset settings (its train_*.sh), read by fairseq's own parser from the
    fine-tuning command each recipe runs, and the beam el-eval decodes with."""
    from fairseq import options

    calls = _run_recipe_with_stubs(name, tmp_path)
    train = next(c for c in calls if c[0] == "fairseq-train")
    got = options.parse_args_and_arch(options.get_training_parser(), train[1:])
    assert (got.task, got.lr, got.max_update, got.warmup_updates) == ("biomed_entity_linking", [lr], steps, warmup)
    assert (got.criterion, got.label_smoothing, got.clip_norm, got.batch_size) == (
        "label_smoothed_cross_entropy", 0.1, 0.1, 8)
    ev = next(c for c in calls if c[0] == "biobart-el-eval" and "--average" not in c)
    assert int(ev[ev.index("--beam") + 1]) == beam


@pytest.mark.parametrize("name,folds", [("ncbi", 1), ("medmentions", 1), ("askapatient", 10)])
def test_recipe_wiring_with_stub_commands(name, folds, tmp_path):
    """What the recipe (and el_common.sh) would run, in which order."""
    calls = [" ".join(c) for c in _run_recipe_with_stubs(name, tmp_path)]
    assert calls[0].startswith(f"biobart-prepare-el --dataset {name} ")
    assert ("--split-pmids" in calls[0]) == (name == "medmentions")
    # the Table 4 datasets are prepared BioSyn/GenBioEL's way, with BioSyn's spelling fixes for NCBI
    assert ("--style genbioel" in calls[0]) == (name == "ncbi")
    assert ("--typo-file" in calls[0] and "ncbi-spell-check.txt" in calls[0]) == (name == "ncbi")
    trains = [c for c in calls if c.startswith("fairseq-train ")]
    evals = [c for c in calls if c.startswith("biobart-el-eval ") and "--average" not in c]
    assert len(trains) == len(evals) == folds
    assert all("--task biomed_entity_linking" in c and "--cpu" in c for c in trains)


def test_gpt2_bpe_model_inputs(tmp_path):
    """Step 2 with BART-style GPT-2 files: the source decodes to the marked, lower-cased context,
    the target to '<mention> is <name>', and every trie path is a KB name + </s>."""
    from fairseq.data import Dictionary, data_utils
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    from biobart_fairseq.cli import prepare_el
    from biobart_fairseq.decoding.trie import Trie
    from test_binarize import tiny_gpt2_files

    enc_json, vocab_bpe, dict_txt = tiny_gpt2_files(tmp_path)
    raw = tmp_path / "raw"
    raw.mkdir()
    text = "Cell death in Colon Cancer cells."
    mention = {"doc_id": "1", "text": text, "start": 14, "end": 26, "mention": "Colon Cancer", "cuis": ["D003110"]}
    for split in ("train", "dev", "test"):
        (raw / f"{split}.jsonl").write_text(json.dumps(mention) + "\n")
    (raw / "kb.tsv").write_text("D003110\tcolon cancer\nD003110\tcolonic neoplasms\nD009369\tcell death\n")
    out = tmp_path / "out"
    assert prepare_el.main(["--dataset", "jsonl", "--input", str(raw), "-o", str(out), "--bpe", "gpt2",
                            "--encoder-json", str(enc_json), "--vocab-bpe", str(vocab_bpe), "--dict", str(dict_txt),
                            "--workers", "1"]) == 0
    encoder = get_encoder(str(enc_json), str(vocab_bpe))
    bin_dir = out / "bin"

    def decode(ids, d):
        return encoder.decode([int(d[t]) for t in ids if t != d.eos()])

    src_dict = Dictionary.load(str(next(bin_dir.glob("dict.source.txt"))))
    tgt_dict = Dictionary.load(str(next(bin_dir.glob("dict.target.txt"))))
    src = data_utils.load_indexed_dataset(str(bin_dir / "test.source-target.source"), src_dict, "mmap")[0].tolist()
    tgt = data_utils.load_indexed_dataset(str(bin_dir / "test.source-target.target"), tgt_dict, "mmap")[0].tolist()
    assert decode(src, src_dict).strip() == "cell death in START colon cancer END cells."
    assert decode(tgt, tgt_dict).strip() == "colon cancer is colon cancer"
    trie = Trie.load(str(bin_dir / "trie.npz"))
    names = set()
    stack = [[]]
    while stack:  # enumerate every complete path of the trie
        seq = stack.pop()
        for t in trie.get(seq):
            if t == tgt_dict.eos():
                names.add(decode(seq, tgt_dict).strip())
            else:
                stack.append(seq + [t])
    assert names == {"colon cancer", "colonic neoplasms", "cell death"}
