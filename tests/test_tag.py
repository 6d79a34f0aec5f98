"""biobart-tag: raw text -> entities with character offsets, the same as biobart-ner-score.

GENIA's release has no raw text (tokens only; SOURCE.md: the raw XML was not brought here), so
each abstract's text is rebuilt in the test from its words: every sentence by
``sentences.detokenize`` (no space before ``.``, ``,``, ``)``, ... nor after ``(``), sentences
(title first) joined by one space.  The equality test gives that text to biobart-tag as plain
text, and the same abstracts, prepared by biobart-prepare-ner, to ``biobart-ner-score
--checkpoint``; a tiny BARTNER model, trained briefly on those very sentences so that it emits
entities, must then find the same entities, at offsets that the test computes on its own (each
word found in order in the rebuilt text) and that slice the text to the entity's words.
"""

import json

import pytest
import torch

from conftest import SHARED_DATA
from test_bartner_decode import train_briefly
from biobart_fairseq.data import ner_formats
from biobart_fairseq.data.sentences import detokenize, split_sentences

GENIA = SHARED_DATA / "genia_nested_ner"
CADEC = SHARED_DATA / "cadec_discontinuous_sample"
TINY = ("--arch bartner_base --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
        "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --encoder-attention-heads 2 "
        "--decoder-attention-heads 2 --dropout 0 --pointer-dropout 0").split()
N_ABSTRACTS = 3  # the first abstracts of GENIA's test split: 30 sentences

pytestmark = pytest.mark.usefixtures("one_thread")


def genia_test_abstracts(n):
    """The first ``n`` abstracts of GENIA test: [(doc id, [GENIA JSON line of each sentence])]."""
    if not (GENIA / "test.jsonlines").exists():
        pytest.skip(f"GENIA not found under {SHARED_DATA}")
    docs = {}
    with open(GENIA / "test.jsonlines", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["doc_id"] not in docs and len(docs) == n:
                break
            docs.setdefault(rec["doc_id"], []).append(line)
    return list(docs.items())


def rebuilt_text(sentences):
    """An abstract's text from its sentences' words, and where each word is in it (found in
    order, independently of the tagger's tokeniser)."""
    text, offsets = "", []
    for tokens in sentences:
        sent = detokenize(tokens)
        base = len(text) + (1 if text else 0)
        text = f"{text} {sent}" if text else sent
        pos, spans = 0, []
        for tok in tokens:
            pos = sent.index(tok, pos)
            spans.append((base + pos, base + pos + len(tok)))
            pos += len(tok)
        offsets.append(spans)
    return text, offsets


def save_checkpoint(model, cfg, path):
    """A fairseq checkpoint as fairseq-train writes one (what load_model_ensemble_and_task reads)."""
    from omegaconf import OmegaConf

    torch.save({"args": None, "cfg": OmegaConf.to_container(cfg, resolve=True), "model": model.state_dict(),
                "optimizer_history": [{"criterion_name": "BartNerLoss", "optimizer_name": "Adam",
                                       "lr_scheduler_state": {}, "num_updates": 0}],
                "extra_state": {}}, path)


def train_tiny(data, steps, *extra):
    """A tiny BARTNER model trained full-batch on DATA/train.jsonl (Adam, lr 1e-2); -> (cfg, model)."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(data), "--task", "bartner_ner", "--criterion", "bartner_loss",
                                                "--cpu", *TINY, *extra])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    train_briefly(task, model, steps)
    return cfg, model


def prepare(d, raw_name, fmt, text_lines, *extra):
    """prepare-ner of ``raw/train.*`` and ``raw/test.*`` (the same sentences) with a sentencepiece BPE."""
    import sentencepiece as spm

    from biobart_fairseq.cli import prepare_ner

    with open(d / "spm.txt", "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in text_lines)
    spm.SentencePieceTrainer.train(input=str(d / "spm.txt"), model_prefix=str(d / "spm"), vocab_size=600,
                                   model_type="bpe", byte_fallback=True, minloglevel=2)
    inputs = [str(d / "raw" / f"{split}{raw_name}") for split in ("train", "test")]
    rc = prepare_ner.main(["--format", fmt, "--input", *inputs, "-o", str(d / "data"), "--bpe", "sentencepiece",
                           "--spm-model", str(d / "spm.model"), *extra])
    assert rc == 0
    return d / "data"


@pytest.fixture(scope="module")
def genia_model(tmp_path_factory):
    """(folder, checkpoint, [(doc id, text, word offsets per sentence, sentences)]) for the first
    GENIA test abstracts, a span-target model trained on their own sentences."""
    d = tmp_path_factory.mktemp("tag_genia")
    abstracts = genia_test_abstracts(N_ABSTRACTS)
    (d / "raw").mkdir()
    for split in ("train", "test"):
        with open(d / "raw" / f"{split}.jsonlines", "w", encoding="utf-8") as f:
            f.writelines(line for _, lines in abstracts for line in lines)
    docs = []
    for doc_id, lines in abstracts:
        sentences = [json.loads(line)["tokens"] for line in lines]
        docs.append((doc_id, *rebuilt_text(sentences), sentences))
    data = prepare(d, ".jsonlines", "genia", [" ".join(s) for *_, sents in docs for s in sents],
                   "--target-type", "span")
    cfg, model = train_tiny(data, 25, "--target-type", "span", "--max-len-a", "0.5")
    save_checkpoint(model, cfg, d / "checkpoint_best.pt")
    return d, d / "checkpoint_best.pt", docs


def ner_score_entities(d, ckpt, docs, *extra):
    """biobart-ner-score --checkpoint on the prepared split: per document, {(type, char spans)}
    with the test's own word offsets; and the scores it printed."""
    from biobart_fairseq.cli import ner_score

    rc = ner_score.main(["--checkpoint", str(ckpt), "--data", str(d / "data"), "--split", "test", "--pred-out",
                         str(d / "test.pred.jsonl"), "--output-json", str(d / "scores.json"), "--quiet", *extra])
    assert rc == 0
    preds = ner_formats.read_jsonl(d / "test.pred.jsonl")
    out, k = [], 0
    for _, text, offsets, sentences in docs:
        found = set()
        for words, tokens in zip(offsets, sentences):
            assert preds[k]["tokens"] == tokens
            for e in preds[k]["entities"]:
                found.add((e["type"], tuple((words[a][0], words[b - 1][1]) for a, b in e["spans"])))
            k += 1
        out.append(found)
    assert k == len(preds)
    return out, json.loads((d / "scores.json").read_text())


def test_tagger_finds_what_ner_score_finds_on_genia_text(genia_model):
    from biobart_fairseq.inference.document import Document
    from biobart_fairseq.inference.tagger import Tagger

    d, ckpt, docs = genia_model
    want, scores = ner_score_entities(d, ckpt, docs)
    assert scores["speed"]["items"] == 30 and scores["speed"]["unit"] == "sentence" and scores["speed"]["items_per_s"] > 0
    tagger = Tagger.from_path(d)  # the folder: its checkpoint_best.pt
    tagged = tagger.tag([Document(doc_id, text) for doc_id, text, *_ in docs])
    n = 0
    for doc, (_, text, offsets, sentences), expected in zip(tagged, docs, want):
        got = {(e.type, tuple(e.spans)) for e in doc.entities}
        assert got == expected
        assert len(got) == len(doc.entities) and not doc.notes
        words = {s: tok for spans, toks in zip(offsets, sentences) for s, tok in zip(spans, toks)}
        for e in doc.entities:
            for s, t in e.spans:  # each fragment slices the text from its first word to its last
                inner = [tok for (a, b), tok in words.items() if s <= a and b <= t]
                assert text[s:t].startswith(inner[0]) and text[s:t].endswith(inner[-1])
                assert "".join(text[s:t].split()) == "".join(inner)
            assert e.text == " ".join(text[s:t] for s, t in e.spans)
        n += len(got)
    assert scores["f1"] > 0.5 and n >= 20, (scores["f1"], n)  # the model emits entities (it was trained on these sentences)


def cli(main, args, capsys):
    """A command's main in-process (an exception fails the test: no traceback allowed)."""
    capsys.readouterr()
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_tag_command_plain_text_to_jsonl_and_pubtator(genia_model, tmp_path, capsys):
    """biobart-tag on the abstracts as one plain-text file (blank lines between them): the
    entities of ner-score; PubTator output whose every line slices the text to its text."""
    from biobart_fairseq.cli import tag

    d, ckpt, docs = genia_model
    want, _ = ner_score_entities(d, ckpt, docs)
    src = tmp_path / "abstracts.txt"
    src.write_text("\n\n".join(text for _, text, *_ in docs) + "\n", encoding="utf-8")
    out = tmp_path / "tagged.jsonl"
    rc, _, err = cli(tag.main, [str(src), "--model", str(ckpt), "-o", str(out), "--quiet",
                                "--report", str(tmp_path / "report.json")], capsys)
    assert rc == 0, err
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == [text for _, text, *_ in docs]
    for r, expected in zip(records, want):
        got = {(e["type"], tuple(map(tuple, e.get("fragments", [[e["start"], e["end"]]])))) for e in r["entities"]}
        assert got == expected
        assert all(r["text"][e["start"]:e["end"]] == e["text"] for e in r["entities"] if "fragments" not in e)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["sentences"] == 30 and report["entities"] == sum(map(len, want)) and report["speed"]["items"] == 30

    rc, _, err = cli(tag.main, [str(src), "--model", str(ckpt), "--output-format", "pubtator", "-o",
                                str(tmp_path / "t.pubtator"), "--quiet"], capsys)
    assert rc == 0, err
    lines = [line.split("\t") for line in (tmp_path / "t.pubtator").read_text(encoding="utf-8").splitlines()
             if "\t" in line]
    assert len(lines) == sum(map(len, want))
    texts = {r["id"]: r["text"] for r in records}
    for doc_id, s, e, text, etype, _ in lines:
        assert texts[doc_id][int(s):int(e)] == text and etype in {"DNA", "RNA", "protein", "cell_line", "cell_type"}


def test_tag_bad_records_skipped_and_wrong_model_refused(genia_model, tmp_path, capsys):
    from biobart_fairseq.cli import ner_score, tag

    d, ckpt, docs = genia_model
    src = tmp_path / "in.txt"
    good = docs[0][1].encode()
    src.write_bytes(good + b"\n\nbad \xff byte here.\n\n" + good + b"\n")
    out = tmp_path / "o.jsonl"
    rc, _, err = cli(tag.main, [str(src), "--model", str(ckpt), "-o", str(out), "--quiet"], capsys)
    assert rc == 3 and f"biobart-tag: skipped {src}:3: " in err and "1 bad record(s) skipped" in err, err
    assert len(out.read_text().splitlines()) == 2

    # a checkpoint of another task: one line naming the file and the task, from both commands
    src = tmp_path / "good.txt"
    src.write_bytes(good)
    state = torch.load(ckpt, weights_only=False)
    state["cfg"]["task"]["_name"] = "biomed_entity_linking"
    other = tmp_path / "el.pt"
    torch.save(state, other)
    rc, _, err = cli(tag.main, [str(src), "--model", str(other), "-o", str(out)], capsys)
    assert rc == 2 and err.startswith(f"biobart-tag: error: {other}: not a model for NER (--task bartner_ner): "
                                      "its task is biomed_entity_linking; for this one use biobart-link") \
        and len(err.splitlines()) == 1, err
    rc, _, err = cli(ner_score.main, ["--checkpoint", str(other), "--data", str(d / "data")], capsys)
    assert rc == 2 and f"biobart-ner-score: error: {other}: not a model for NER" in err, err
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    for model, message in ((tmp_path / "junk.pt", "not a fairseq checkpoint"), (tmp_path / "none.pt", "no such file"),
                           (tmp_path, "no checkpoint_best.pt or checkpoint_last.pt in this folder")):
        rc, _, err = cli(tag.main, [str(src), "--model", str(model)], capsys)
        assert rc == 2 and err.startswith(f"biobart-tag: error: {model}: {message}") and len(err.splitlines()) == 1, err
    rc, _, err = cli(tag.main, [str(tmp_path / "missing.txt"), "--model", str(ckpt)], capsys)
    assert rc == 2 and f"{tmp_path / 'missing.txt'}: no such file" in err, err


def test_over_long_sentence_is_split_with_a_note(genia_model):
    """A sentence with more BPE positions than the model has is tagged in parts that fit, every
    word in exactly one part, and the document says where it was split."""
    from biobart_fairseq.data.ner_formats import text_words
    from biobart_fairseq.inference.document import Document
    from biobart_fairseq.inference.tagger import Tagger

    d, ckpt, docs = genia_model
    tagger = Tagger.from_path(ckpt)
    text = docs[0][1]
    long_sentence = " ; ".join(s.rstrip(".") for s in split_sentences(text)) + "."
    words = text_words(long_sentence)
    n_bpe = sum(len(tagger.task.encode_word(long_sentence[a:b])) for a, b in words)
    tagger.limit = n_bpe // 3  # about four parts
    doc = Document("long", long_sentence)
    inputs = tagger.inputs([doc])
    assert len(inputs) >= 4
    assert [w for x in inputs for w in x.words] == words  # nothing dropped, nothing repeated
    assert all(2 + sum(len(tagger.task.encode_word(t)) for t in x.tokens) <= tagger.limit for x in inputs)
    assert len(doc.notes) == 1 and f"characters 0-{len(long_sentence)}: a sentence of {n_bpe + 2} BPE positions" in doc.notes[0]
    assert ", ".join(str(x.words[0][0]) for x in inputs[1:]) in doc.notes[0]
    tagger.tag([doc], inputs=inputs)
    assert doc.entities and all(doc.text[s:e] for ent in doc.entities for s, e in ent.spans)
    for ent in doc.entities:  # no entity crosses a split
        assert any(x.words[0][0] <= ent.start and ent.end <= x.words[-1][1] for x in inputs)


@pytest.fixture(scope="module")
def cadec_model(tmp_path_factory):
    """The same for the 4 real CADEC sentences (6 discontinuous ADRs) as one document, a
    word-target model trained on them."""
    if not (CADEC / "dev.txt").exists():
        pytest.skip(f"CADEC sample not found under {SHARED_DATA}")
    d = tmp_path_factory.mktemp("tag_cadec")
    (d / "raw").mkdir()
    for split in ("train", "test"):
        (d / "raw" / f"{split}.txt").write_bytes((CADEC / "dev.txt").read_bytes())
    sentences = [s["tokens"] for s in ner_formats.read(CADEC / "dev.txt", "dai")]
    data = prepare(d, ".txt", "dai", [" ".join(s) for s in sentences])
    cfg, model = train_tiny(data, 40, "--target-type", "word", "--max-len-a", "1.6")
    save_checkpoint(model, cfg, d / "checkpoint_best.pt")
    return d, d / "checkpoint_best.pt", [("cadec", *rebuilt_text(sentences), sentences)]


def test_discontinuous_fragments_at_their_characters(cadec_model):
    from biobart_fairseq.inference.document import Document
    from biobart_fairseq.inference.tagger import Tagger

    d, ckpt, docs = cadec_model
    (want,), _ = ner_score_entities(d, ckpt, docs)
    _, text, offsets, sentences = docs[0]
    (doc,) = Tagger.from_path(ckpt).tag([Document("cadec", text)])
    assert {(e.type, tuple(e.spans)) for e in doc.entities} == want
    fragmented = [e for e in doc.entities if len(e.spans) > 1]
    assert len(fragmented) >= 3, [e.text for e in doc.entities]
    for e in fragmented:  # each fragment is its own words: "tingling ... hands" is not "tingling and numbness ( hands"
        assert e.text == " ".join(text[s:t] for s, t in e.spans) and all(
            text[t:u].strip() for (_, t), (u, _) in zip(e.spans, e.spans[1:]))


def test_text_words_and_splitter_reproduce_genia_test_abstracts():
    """How often raw text comes back as GENIA's sentences and words (the condition of the
    equality above): the 199 test abstracts, each rebuilt from its words (title first)."""
    from biobart_fairseq.data.ner_formats import text_words

    docs = {}
    for s in ner_formats.read(GENIA / "test.jsonlines", "genia"):
        docs.setdefault(s["doc_id"], []).append(s["tokens"])
    same_abstracts = same_sentences = 0
    for sentences in docs.values():
        text, _ = rebuilt_text(sentences)
        got = [[s[a:b] for a, b in text_words(s)] for s in split_sentences(text)]
        same_abstracts += got == sentences
        same_sentences += sum(1 for g in got if g in sentences)
    assert len(docs) == 199
    # measured: 169 of 199 abstracts, 1,677 of 1,732 sentences (the splitter's GENIA errors, and
    # words GENIA cut at entity boundaries or kept with a space inside: "ER- cells")
    assert same_abstracts >= 165 and same_sentences >= 1670, (same_abstracts, same_sentences)
