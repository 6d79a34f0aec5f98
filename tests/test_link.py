"""biobart-link (issue 21 item 1): raw NCBI-disease test documents with their gold mention
offsets give exactly biobart-el-eval's predictions for the same tiny model; the inputs it
builds for --style genbioel are the ones preparation wrote; a user --kb gives the prepared
KB's results from a trie cached beside it; bad input is skipped and reported, or one line."""

import json

import pytest

from biobart_fairseq.cli import el_eval, link, prepare_el
from biobart_fairseq.data import el_prepare as P
from biobart_fairseq.inference import formats
from biobart_fairseq.inference.linker import Linker, mentions_of

from conftest import REPO, SHARED_DATA, TINY_BART, run

NCBI = SHARED_DATA / "ncbi_disease"
N = 150  # mentions per split kept by --limit

pytestmark = pytest.mark.usefixtures("one_thread")


def _need_ncbi():
    if not NCBI.is_dir():
        pytest.skip(f"NCBI-disease corpus not found at {NCBI}")


@pytest.fixture(scope="module")
def el(tmp_path_factory):
    """(prepared folder, checkpoint): the first 150 mentions of each NCBI split, the KB the
    dataset's (concept, mention) pairs, a tiny model trained 150 updates."""
    _need_ncbi()
    out = tmp_path_factory.mktemp("link_el") / "prep"
    assert prepare_el.main(["--dataset", "ncbi", "--input", str(NCBI), "--kb-from-data", "-o", str(out),
                            "--bpe", "sentencepiece", "--vocab-size", "500", "--max-context-words", "32",
                            "--limit", str(N), "--workers", "1"]) == 0
    save = out.parent / "ckpt"
    res = run(["fairseq-train", str(out / "bin"), "--user-dir", str(REPO / "biobart_fairseq"),
               "--task", "biomed_entity_linking", *TINY_BART, "--share-all-embeddings",
               "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--optimizer", "adam",
               "--lr", "5e-3", "--max-tokens", "1024", "--max-update", "150", "--cpu", "--num-workers", "0",
               "--seed", "1", "--save-dir", str(save), "--no-epoch-checkpoints", "--disable-validation",
               "--log-format", "simple", "--no-progress-bar"], env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-3000:]
    return out, save / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def raw_test(el, tmp_path_factory):
    """The raw NCBI test documents (PubTator, as published) holding the first 150 mentions."""
    blocks = [b.strip("\n") for b in (NCBI / "test" / "NCBItestset_corpus.txt").read_text().split("\n\n") if b.strip()]
    kept, n = [], 0
    for b in blocks:
        if n >= N:
            break
        kept.append(b)
        n += sum(1 for line in b.split("\n") if len(line.split("\t")) == 6)
    path = tmp_path_factory.mktemp("link_raw") / "test.pubtator"
    path.write_text("\n\n".join(kept) + "\n")
    return path


@pytest.fixture(scope="module")
def eval_preds(el, tmp_path_factory):
    prep, ckpt = el
    tmp = tmp_path_factory.mktemp("link_eval")
    assert el_eval.main([str(prep / "bin"), "--path", str(ckpt), "--beam", "5", "--batch-size", "64",
                         "-o", str(tmp / "preds.jsonl"), "--results", str(tmp / "res.json"), "--quiet"]) == 0
    return ([json.loads(line) for line in (tmp / "preds.jsonl").read_text().splitlines()],
            json.loads((tmp / "res.json").read_text()))


def _expected(rec, k=5):
    """el-eval's ranked names -> the first k distinct CUIs, each with the name that brought it."""
    out, seen = [], set()
    for name, cuis in zip(rec["names"], rec["cuis"]):
        for c in cuis:
            if c not in seen and len(out) < k:
                seen.add(c)
                out.append((c, name))
    return out


def _linked(path):
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    return docs, [(d, e) for d in docs for e in d["entities"]]


def _link(tmp_path, *argv):
    out = tmp_path / "linked.jsonl"
    rc = link.main([*map(str, argv), "-o", str(out), "--quiet"])
    return rc, out


def test_link_on_raw_documents_gives_el_eval_predictions(el, raw_test, eval_preds, tmp_path):
    prep, ckpt = el
    preds, res = eval_preds
    rc, out = _link(tmp_path, raw_test, "--model", ckpt, "--data", prep / "bin")
    assert rc == 0
    docs, ents = _linked(out)
    assert len(preds) == N and len(ents) >= N
    for p, (d, e) in zip(preds, ents):  # el-eval's order is the corpus's: documents, then annotations
        assert (p["doc_id"], p["mention"]) == (d["id"], e["text"]) == (d["id"], d["text"][e["start"]:e["end"]])
        assert [(c["cui"], c["name"]) for c in e["concepts"]] == _expected(p)
        best = {}
        for cs, score in zip(p["cuis"], p["scores"]):
            for c in cs:
                best.setdefault(c, score)  # the score of the best name with that CUI
        assert all(c["score"] == pytest.approx(best[c["cui"]], abs=1e-4) for c in e["concepts"])
    # not a constant model: the equality covers mentions the model tells apart
    assert len({tuple(c["cui"] for c in e["concepts"]) for _, e in ents[:N]}) > 10
    # el-eval's JSON carries the measured rate (issue 22 item 2)
    assert res["speed"]["items"] == N and res["speed"]["unit"] == "mention"
    assert res["speed"]["items_per_s"] == pytest.approx(N / res["speed"]["seconds"], rel=0.01)


def test_the_source_window_matters(el, raw_test, eval_preds):
    """Control for the equality above: the same documents with a narrower context window than
    the model's style (32 words) give other names for some mentions."""
    prep, ckpt = el
    preds, _ = eval_preds
    linker = Linker.from_path(str(ckpt), data_dir=str(prep / "bin"))
    docs = [d for d in formats.read(raw_test) if not isinstance(d, formats.BadRecord)]
    linker.style.max_context_words = 4
    linker.link(docs)
    got = [[(c.cui, c.name) for c in e.concepts] for d in docs for e in d.entities][:N]
    assert sum(g != _expected(p) for g, p in zip(got, preds)) > 10


def test_genbioel_inputs_from_raw_text_are_the_prepared_ones():
    """--style genbioel (abbreviations expanded, BioSyn's typo list and normalisation): the
    source and prefix the linker builds from the raw documents are those preparation built
    for every test mention of one concept (a composite's concept count is gold, unknown at
    inference)."""
    _need_ncbi()
    from argparse import Namespace

    typos = NCBI / "dictionary" / "ncbi-spell-check.txt"
    args = Namespace(input=str(NCBI), typo_file=str(typos), ncbi_train="traindev", style="genbioel",
                     genbioel_dataset="ncbi", max_context_words=64, keep_case=False, ambiguous_names="keep")
    ctx = P.Context()
    prepared = [m for m in P._read_ncbi_genbioel(args, ctx)["test"] if len(m.cuis) == 1]
    assert ctx.counts["test_abbreviations_expanded"] > 50  # the case the test is about
    style = P.ModelStyle.from_args(args)
    docs = [d for d in formats.read(NCBI / "test" / "NCBItestset_corpus.txt") if not isinstance(d, formats.BadRecord)]
    items = {(d.id, e.start, e.end): (d, e) for d in docs for e in d.entities}
    keys = [(m.doc_id, m.start, m.end) for m in prepared]
    ours = mentions_of([items[k] for k in keys], style)
    assert len(ours) == len(prepared) > 900
    assert [P.model_input(m, style) for m in ours] == [P.model_input(m, style) for m in prepared]
    assert sum(m.query != " ".join(m.mention.lower().split()) for m in ours) > 50


def test_user_kb_is_cached_and_links_as_the_prepared_kb(el, raw_test, tmp_path):
    prep, ckpt = el
    kb = tmp_path / "kb.tsv"
    kb.write_text((prep / "kb.tsv").read_text())
    (tmp_path / "own").mkdir()
    rc, own = _link(tmp_path / "own", raw_test, "--model", ckpt, "--data", prep / "bin")
    assert rc == 0
    (tmp_path / "a").mkdir()
    rc, first = _link(tmp_path / "a", raw_test, "--model", ckpt, "--data", prep / "bin", "--kb", kb)
    assert rc == 0
    cache = sorted((tmp_path / "kb.tsv.biobart-trie").iterdir())
    assert len(cache) == 1 and (cache[0] / "trie.npz").is_file()
    stamp = (cache[0] / "trie.npz").stat().st_mtime_ns
    (tmp_path / "b").mkdir()
    rc, second = _link(tmp_path / "b", raw_test, "--model", ckpt, "--data", prep / "bin", "--kb", kb)
    assert rc == 0 and (cache[0] / "trie.npz").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert own.read_text() == first.read_text() == second.read_text()
    # a changed KB builds its own trie: a new concept is reachable from then on
    with kb.open("a") as f:
        f.write("X0001\tcopper toxicosis of bedlington terriers\n")
    linker = Linker.from_path(str(ckpt), data_dir=str(prep / "bin"), kb=str(kb))
    assert len(list((tmp_path / "kb.tsv.biobart-trie").iterdir())) == 2
    assert any(cuis == ["X0001"] for _, cuis in linker.kb_names.values())


def _bad_jsonl(path):
    good = {"text": "Familial breast cancer and ovarian cancer.", "mentions": [{"start": 9, "end": 22}]}
    lines = [json.dumps(good).encode(), b"",
             json.dumps({"text": "Short.", "mentions": [{"start": 2, "end": 40}]}).encode(),
             b'{"text": "caf\xe9 au lait spots", "mentions": [{"start": 0, "end": 4}]}',
             json.dumps({"id": "d5", "text": "Colon cancer.", "mentions": [{"start": 0, "end": 12}]}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_bad_records_are_skipped_counted_and_reported(el, tmp_path, capsys):
    prep, ckpt = el
    inp = tmp_path / "in.jsonl"
    _bad_jsonl(inp)
    rc, out = _link(tmp_path, inp, "--model", ckpt, "--data", prep / "bin", "--report", tmp_path / "report.json")
    err = capsys.readouterr().err
    assert rc == 3 and "Traceback" not in err
    for line in (2, 3, 4):
        assert f"biobart-link: skipped {inp}:{line}: " in err
    docs, ents = _linked(out)
    assert [e["text"] for _, e in ents] == ["breast cancer", "Colon cancer"]
    assert all(1 <= len(e["concepts"]) <= 5 for _, e in ents)  # distinct CUIs of the 5 names
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["bad_records"]) == 3 and report["mentions"] == 2


def test_unusable_model_or_data_is_one_line(el, tmp_path, capsys):
    import torch

    prep, ckpt = el
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"text": "Colon cancer.", "mentions": [{"start": 0, "end": 12}]}) + "\n")
    state = torch.load(ckpt, weights_only=False)
    state["cfg"]["task"]["_name"] = "biomed_denoising"  # what a pretrained (not a linking) model says
    other = tmp_path / "denoising.pt"
    torch.save(state, other)
    not_ckpt = tmp_path / "notes.pt"
    not_ckpt.write_text("not a checkpoint\n")
    cases = [(other, prep / "bin", "not a model for entity linking (--task biomed_entity_linking): its task is biomed_denoising"), (not_ckpt, prep / "bin", "not a fairseq checkpoint"),
             (ckpt, tmp_path, "not a biobart-prepare-el model-input folder"),
             (tmp_path / "missing.pt", prep / "bin", "no such file")]
    for model, data, reason in cases:
        rc, _ = _link(tmp_path, inp, "--model", model, "--data", data)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("biobart-link: error: ") and reason in err[0], err
    # without --data the folder is found from the checkpoint (the --data it was trained on)
    rc, out = _link(tmp_path, inp, "--model", ckpt.parent)
    assert rc == 0 and _linked(out)[1][0][1]["concepts"]


def test_a_window_too_long_for_the_model_is_narrowed_and_noted(el, raw_test):
    prep, ckpt = el
    linker = Linker.from_path(str(ckpt), data_dir=str(prep / "bin"))
    linker.max_source = 24  # as if the model had 24 positions: the 32-word windows do not fit
    doc = next(d for d in formats.read(raw_test) if not isinstance(d, formats.BadRecord))
    linker.link([doc])
    assert len(doc.notes) == len(doc.entities) and all(e.concepts for e in doc.entities)
    assert doc.notes[0].startswith(f"mention {doc.entities[0].start}-{doc.entities[0].end}: context window narrowed")
    m = mentions_of([(doc, doc.entities[0])], linker.style)[0]
    assert len(linker._source(doc, m)) <= 24 < len(linker._encode(linker.style.source(m), linker.task.source_dictionary))
