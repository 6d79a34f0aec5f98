"""biobart-prepare-el data preparation (issue 14): GenBioEL's and BioSyn's normalisation,
Schwartz & Hearst abbreviation definitions, composite mentions, the dictionaries with
mention synonyms, BC5CDR counts on the real corpus (Table 1), ids -1, unusable inputs.
Expected values are worked out by hand in the comments."""

import json

import pytest

from biobart_fairseq.cli import prepare_el
from biobart_fairseq.data import el_biosyn as B
from biobart_fairseq.data import el_formats as F
from biobart_fairseq.data import el_prepare
from biobart_fairseq.data.abbreviations import best_long_form, expand_tokens, find_abbreviations

from conftest import SHARED_DATA

NCBI = SHARED_DATA / "ncbi_disease"
BC5CDR = SHARED_DATA / "bc5cdr"


# --- normalisation -------------------------------------------------------------------------------
def test_genbioel_conv_replaces_its_23_characters_only():
    # , ( ) - ' are in GenBioEL's list; ':' '&' '#' and non-ASCII marks are not
    assert B.genbioel_conv(" Breast-Ovarian Cancer, Familial (BROVCA1) ") == "breast ovarian cancer familial brovca1"
    assert B.genbioel_conv("Factor V:Leiden & #2") == "factor v:leiden & #2"
    assert B.genbioel_conv("Tom &amp; Jerry’s") == "tom &amp jerry’s"  # no html unescape; ';' is in the list
    assert B.genbioel_conv("5'-Nucleotidase/x=y%z<w>", lowercase=False) == "5 Nucleotidase x y z w"
    # the raw style removes every punctuation mark and unescapes html
    assert F.conv_name("Factor V:Leiden & #2") == "factor v leiden 2"
    assert F.conv_name("Tom &amp; Jerry’s") == "tom jerry s"


def test_biosyn_text_lowercases_then_corrects_then_splits_on_punctuation():
    text = B.BiosynText({"hemmorhage": "haemorrhage"}, keep="|")
    # typos are whole whitespace tokens, looked up before punctuation goes: "hemmorhage," stays;
    # ")" splits, so the pieces "acute" and "|bleeding" are joined by a space
    assert text("Hemmorhage, Non-traumatic (acute)|bleeding") == "hemmorhage non traumatic acute |bleeding"
    assert text("brain hemmorhage") == "brain haemorrhage"
    assert B.BiosynText()("a|b--c") == "a b c"  # the dictionary side keeps no '|'


def test_typo_file_reader(tmp_path):
    f = tmp_path / "typos.txt"
    f.write_text("hemmorhage||haemorrhage\nfist||first\nlonely\n")
    assert B.read_typos(f) == {"hemmorhage": "haemorrhage", "fist": "first", "lonely": ""}


# --- abbreviations -------------------------------------------------------------------------------
def test_best_long_form_by_hand():
    # right to left: 'c' is the c of "attack"; 'a' must begin a word: the 'a' of "attack"
    assert best_long_form("AC", "back attack") == "attack"
    assert best_long_form("HSP70", "of the heat shock protein 70") == "heat shock protein 70"
    # "DM": 'm' is found in "myotonic", no word-initial 'd' before it
    assert best_long_form("DM", "myotonic dystrophy") is None


def test_find_abbreviations_by_hand():
    text = ("Duchenne muscular dystrophy (DMD) is a disease. Patients with DMD die young. "
            "We studied APC (adenomatous polyposis coli) carriers, and myotonic dystrophy (DM) "
            "cases (n = 12). Among cases, heat shock (HS) rose (p < 0.05).")
    assert find_abbreviations(text) == {
        "DMD": "Duchenne muscular dystrophy",
        "APC": "adenomatous polyposis coli",  # "SF (long form)": three words in the parentheses
        "HS": "heat shock",                   # the long form does not reach back over ", "
    }                                         # "DM": letters out of order; "(n = 12)", "(p < 0.05)": none
    # the first definition of a short form wins
    assert find_abbreviations("heat shock (HS) and high salt (HS).") == {"HS": "heat shock"}


def test_expand_tokens_as_biosyn():
    abbr = {"DMD": "duchenne muscular dystrophy", "BMD": "becker muscular dystrophy"}
    assert expand_tokens("DMD/BMD carriers, DMD,", abbr) == (
        "duchenne muscular dystrophy/becker muscular dystrophy carriers, duchenne muscular dystrophy,")
    assert expand_tokens("A1", {"A1": "B2 x", "B2": "y"}) == "y x"  # repeated until nothing changes
    # a long form that holds its short form stops after max_rounds rounds
    assert expand_tokens("AS", {"AS": "AS syndrome"}, max_rounds=3) == "AS syndrome syndrome syndrome"


# --- composite mentions -----------------------------------------------------------------------------
@pytest.mark.parametrize("mention,n,parts", [
    ("breast and ovarian cancer", 2, ["breast cancer", "ovarian cancer"]),
    ("cancer of the breast and ovary", 2, ["cancer of breast", "cancer of ovary"]),
    ("colorectal, endometrial, and ovarian cancers", 3,
     ["colorectal cancers", "endometrial cancers", "ovarian cancers"]),
    ("breast, ovarian and/or colon and rectal cancer", 3,
     ["breast cancer", "ovarian cancer", "colon and rectal cancer"]),
    # the slash rule's groups are greedy: everything after '/' is the second part
    ("HPRT/APRT deficiency", 2, ["HPRT", "APRT deficiency"]),
    ("hh hfe", 2, ["hh", "hfe"]),                  # as many tokens as ids
    ("complex syndrome", 3, ["complex syndrome"]),  # nothing applies
    ("breast and ovarian cancer", 1, ["breast and ovarian cancer"]),
])
def test_resolve_composite(mention, n, parts):
    assert B.resolve_composite(mention, n) == parts


def _m(text, mention, ids):
    i = text.index(mention)
    return F.Mention("1", text, i, i + len(mention), mention, F.split_cuis(ids))


def test_bc5cdr_composite_split_as_genbioel():
    text = "Both pulmonary and renal insufficiency and cholestatic hepatitis occurred."
    m = _m(text, "pulmonary and renal insufficiency", "D011665|D051437")
    got = B.split_bc5cdr_composite(m, "D011665|D051437", "pulmonary insufficiency|renal insufficiency")
    # two parts and " and " in the mention: split there, "pulmonary" / "renal insufficiency"
    assert [(p.mention, p.cuis, text[p.start:p.end]) for p in got] == [
        ("pulmonary", ["D011665"], "pulmonary"), ("renal insufficiency", ["D051437"], "renal insufficiency")]
    m = _m(text, "cholestatic hepatitis", "D002779|D056486")
    got = B.split_bc5cdr_composite(m, "D002779|D056486", "cholestatic|hepatitis")  # parts joined = mention
    assert [(text[p.start:p.end], p.cuis) for p in got] == [("cholestatic", ["D002779"]), ("hepatitis", ["D056486"])]
    assert B.split_bc5cdr_composite(m, "D002779|D056486", None) is None           # no 7th column
    assert B.split_bc5cdr_composite(m, "D1|D1|D1", "a x|b x|c x") is None           # 3 parts, not the mention


# --- unusable input and ids -1 --------------------------------------------------------------------
def test_non_utf8_and_empty_inputs_exit_2_naming_file_and_line(tmp_path, capsys):
    corpus = tmp_path / "ncbi"
    corpus.mkdir()
    good = "1|t|Gout.\n1|a|Gout flares.\n1\t0\t4\tGout\tSpecificDisease\tD006073\n\n"
    (corpus / "NCBItrainset_corpus.txt").write_text(good)
    (corpus / "NCBIdevelopset_corpus.txt").write_text(good)
    (corpus / "NCBItestset_corpus.txt").write_bytes(b"1|t|Gout.\n1|a|Goutte \xe9tait l\xe0.\n")
    rc = prepare_el.main(["--dataset", "ncbi", "--input", str(corpus), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "NCBItestset_corpus.txt:2: not UTF-8" in err and "Traceback" not in err
    (corpus / "NCBItestset_corpus.txt").write_text("\n\n")
    rc = prepare_el.main(["--dataset", "ncbi", "--input", str(corpus), "-o", str(tmp_path / "out")])
    assert rc == 2 and "NCBItestset_corpus.txt: empty file" in capsys.readouterr().err
    (corpus / "NCBItestset_corpus.txt").write_text(good)
    kb = tmp_path / "kb.txt"
    kb.write_bytes(b"D006073||Gout\nD1||caf\xe9\n")
    rc = prepare_el.main(["--dataset", "ncbi", "--input", str(corpus), "--kb", str(kb), "-o", str(tmp_path / "out")])
    assert rc == 2 and "kb.txt:2: not UTF-8" in capsys.readouterr().err


def test_el_eval_rejects_bad_inputs_before_loading_a_model(tmp_path, capsys):
    from biobart_fairseq.cli import el_eval

    data = tmp_path / "bin"
    data.mkdir()
    ckpt = tmp_path / "model.pt"
    ckpt.write_text("not a checkpoint: never loaded")
    (data / "kb_names.tsv").write_text("gout\tD006073\t5 6\n")
    (data / "test.meta.jsonl").write_text('{"cuis": ["D1"]}\n\n{"cuis": \n')
    assert el_eval.main([str(data), "--path", str(ckpt)]) == 2
    assert "test.meta.jsonl:3: not JSON" in capsys.readouterr().err  # file line, blank line counted
    (data / "test.meta.jsonl").write_bytes(b'{"cuis": ["D1"]}\n{"mention": "caf\xe9"}\n')
    assert el_eval.main([str(data), "--path", str(ckpt)]) == 2
    assert "test.meta.jsonl:2: not UTF-8" in capsys.readouterr().err
    (data / "test.meta.jsonl").write_text("")
    assert el_eval.main([str(data), "--path", str(ckpt)]) == 2
    assert "test.meta.jsonl: empty file" in capsys.readouterr().err
    (data / "test.meta.jsonl").write_text('{"cuis": ["D1"]}\n{"cui": ["D1"]}\n')  # misspelt key
    assert el_eval.main([str(data), "--path", str(ckpt)]) == 2
    assert 'test.meta.jsonl:2: a sample record needs a "cuis" list' in capsys.readouterr().err
    (data / "test.meta.jsonl").write_text('{"cuis": ["D1"]}\n')
    (data / "kb_names.tsv").write_text("gout\tD006073\n")
    assert el_eval.main([str(data), "--path", str(ckpt)]) == 2
    assert "kb_names.tsv:1: expected name<TAB>cuis<TAB>token ids" in capsys.readouterr().err


def test_ids_minus_one_are_counted_not_errors(tmp_path):
    text = "Aspirin and X caused rash."
    lines = ["1|t|" + text, "1|a|",
             "1\t0\t7\tAspirin\tChemical\tD001241", "1\t12\t13\tX\tChemical\t-1",
             "1\t21\t25\trash\tDisease\tD005076", ""]
    corpus = tmp_path / "cdr"
    corpus.mkdir()
    for name in ("Training", "Development", "Test"):
        (corpus / f"CDR_{name}Set.PubTator.txt").write_text("\n".join(lines) + "\n")
    for style in ("raw", "genbioel"):
        out = tmp_path / style
        assert prepare_el.main(["--dataset", "bc5cdr", "--input", str(corpus), "-o", str(out), "--style", style]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["mentions"] == {"train": 2, "dev": 2, "test": 2} and report["bad_records"] == []
        counted = report["counts"].get("no_concept", 0) + report["counts"].get("test_no_concept", 0)
        assert counted == (3 if style == "raw" else 1)  # raw: one count over the 3 files


# --- dictionaries with mention synonyms (BioSyn: dev = KB + train, test = + dev) ----------------------
def tiny_ncbi(folder, docs):
    """An NCBI-disease folder (train, dev, test files in the corpus's names), one document a
    file: ``docs`` = three (title, mention, concept id), the mention annotated where it first
    stands in the title; PMIDs 1, 2, 3."""
    folder.mkdir()
    for pmid, (name, (title, mention, cui)) in enumerate(zip(("trainset", "developset", "testset"), docs), 1):
        i = title.index(mention)
        (folder / f"NCBI{name}_corpus.txt").write_text(
            f"{pmid}|t|{title}\n{pmid}|a|\n{pmid}\t{i}\t{i + len(mention)}\t{mention}\tSpecificDisease\t{cui}\n\n")
    return folder


def test_ncbi_dictionaries_add_train_and_dev_mentions(tmp_path):
    corpus = tiny_ncbi(tmp_path / "ncbi", [
        ("Duchenne muscular dystrophy (DMD) and Duchenne's palsy.", "Duchenne's palsy", "D020388"),
        ("A Becker-type weakness.", "Becker-type weakness", "D049288"),
        ("Becker muscular dystrophy (BMD): BMD.", "BMD", "D049288")])
    kb = tmp_path / "medic.txt"
    kb.write_text("D020388||Muscular Dystrophy, Duchenne\nD049288||Becker Muscular Dystrophy\n")
    args = prepare_el.parse_args(["--dataset", "ncbi", "--input", str(corpus), "--kb", str(kb), "-o", str(tmp_path / "o"),
                                  "--style", "genbioel", "--ncbi-train", "train"])
    ctx = el_prepare.Context()
    splits, kb_pairs = el_prepare.read_inputs(args, ctx)
    # queries: lower case, punctuation to spaces, the test's "BMD" expanded from its own abstract
    assert [m.query for s in ("train", "dev", "test") for m in splits[""][s]] == [
        "duchenne s palsy", "becker type weakness", "becker muscular dystrophy"]
    name_cuis, per_split = el_prepare.dictionaries(args, kb_pairs, ctx)
    assert per_split["train"] == {"D020388": ["muscular dystrophy duchenne"], "D049288": ["becker muscular dystrophy"]}
    assert per_split["dev"]["D020388"] == ["muscular dystrophy duchenne", "duchenne s palsy"]
    assert per_split["dev"]["D049288"] == ["becker muscular dystrophy"]
    assert per_split["test"]["D049288"] == ["becker muscular dystrophy", "becker type weakness"]
    assert name_cuis["duchenne s palsy"] == ["D020388"] and name_cuis["becker type weakness"] == ["D049288"]


# --- the real corpora: Table 1 counts --------------------------------------------------------------
def _prepare(out, dataset, inp, *extra):
    assert prepare_el.main(["--dataset", dataset, "--input", str(inp), "-o", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text()), out


def test_bc5cdr_counts_on_the_real_corpus(tmp_path):
    if not BC5CDR.is_dir():
        pytest.skip(f"BC5CDR corpus not found at {BC5CDR}")
    # raw: every annotation line (9,385 / 9,591 / 9,809) less those with an id -1
    # (76 / 60 / 91), which are counted, not bad records -> exit 0
    report, _ = _prepare(tmp_path / "raw", "bc5cdr", BC5CDR)
    assert report["mentions"] == {"train": 9309, "dev": 9531, "test": 9718}
    assert report["counts"]["no_concept"] == 227 and report["bad_records"] == []
    # GenBioEL's reader (these figures also come out of a line-for-line re-implementation of
    # its read_bc5cdr run beside ours): composite lines split where its rules apply (66 / 71 /
    # 47), dropped where none does (23 / 18 / 10) and multi-id lines without a 7th column
    # dropped (9 / 11 / 18): 32 / 29 / 28; ids -1 dropped
    report, out = _prepare(tmp_path / "g", "bc5cdr", BC5CDR, "--style", "genbioel")
    assert report["mentions"] == {"train": 9343, "dev": 9574, "test": 9737}
    c = report["counts"]
    assert [c[f"{s}_composite_split"] for s in ("train", "dev", "test")] == [66, 71, 47]
    assert [c[f"{s}_composite_not_split"] for s in ("train", "dev", "test")] == [32, 29, 28]
    assert [c[f"{s}_no_concept"] for s in ("train", "dev", "test")] == [76, 60, 91]
    test = list(F.read_jsonl(out / "test.jsonl"))
    assert all(m.text[m.start:m.end] == m.mention and len(m.cuis) == 1 for m in test)
    assert all(m.query == m.query.lower() for m in test)


def test_ncbi_genbioel_counts_and_queries(tmp_path):
    if not NCBI.is_dir():
        pytest.skip(f"NCBI-disease corpus not found at {NCBI}")
    report, out = _prepare(tmp_path / "g", "ncbi", NCBI, "--style", "genbioel", "--kb",
                           str(NCBI / "dictionary" / "medic_06Jul2012.txt"),
                           "--typo-file", str(NCBI / "dictionary" / "ncbi-spell-check.txt"))
    assert report["mentions"] == {"train": 5784, "dev": 787, "test": 960}  # Table 1
    c = report["counts"]
    assert not any(k.endswith("not_in_kb") for k in c)  # every NCBI id is in MEDIC
    test = {(m.doc_id, m.start): m for m in F.read_jsonl(out / "test.jsonl")}
    # test PMID 9949209 defines nothing; its first mention only loses case
    assert test[("9949209", 23)].query == "copper toxicosis"
    queries = [m.query for m in test.values()]
    assert all(q == B.BiosynText(keep="|")(q) for q in queries)  # already processed: a fixed point
    assert sum("|" in q for q in queries) == c["test_composites_resolved"]
    state = json.loads((out / "genbioel.json").read_text())
    assert state["dataset"] == "ncbi" and len(state["synonyms"]["test"]) > len(state["synonyms"]["dev"]) > 5000


def test_genbioel_window_and_query_by_hand():
    def mention(text, ment="MENT", query=None):
        i = text.index(ment)
        return F.Mention("1", text, i, i + len(ment), ment, ["X"], query)

    # 12 words > 6: both sides longer than 3 -> 3 words a side (mention and markers not counted)
    m = mention("a b c d MENT e f g h i j k", query="breast cancer|ovarian cancer")
    assert el_prepare.make_source_genbioel(m, 6) == "b c d START breast cancer END e f g"
    assert el_prepare.make_prefix(m) == "breast cancer is"  # the first phrase of a resolved composite
    # left side short: kept whole, the right side fills up to 6 context words
    assert el_prepare.make_source_genbioel(mention("a MENT b c d e f g h"), 6) == "a START ment END b c d e f"
    # right side short: kept whole, the left side fills up
    assert el_prepare.make_source_genbioel(mention("a b c d e f g MENT h"), 6) == "c d e f g START ment END h"
    # at most 6 words in all: the whole text
    assert el_prepare.make_source_genbioel(mention("x MENT &amp; y"), 6) == "x START ment END & y"


def test_cometa_errors_name_file_lines(tmp_path):
    f = tmp_path / "test.csv"
    # a blank line before the bad row: its file line is 4, its row number 2
    f.write_text("ID\tTerm\tGeneral SNOMED ID\tExample\n7\tHeadache\t25064002\tbad headache\n\n8\t\t1\tno term\n")
    recs = list(F.read_cometa(f))
    assert isinstance(recs[0], F.Mention) and isinstance(recs[1], F.BadRecord) and recs[1].line == 4


def test_jsonl_rerun_keeps_the_dictionary_each_train_mention_uses(tmp_path):
    corpus = tiny_ncbi(tmp_path / "ncbi", [("Gout.", "Gout", "D1"), ("Rickets.", "Rickets", "D2"), ("Gout.", "Gout", "D3")])
    kb = tmp_path / "kb.txt"
    kb.write_text("D1||Gout\nD2||Rickets\nD3||Gout\n")
    out = tmp_path / "step1"
    assert prepare_el.main(["--dataset", "ncbi", "--input", str(corpus), "--kb", str(kb), "-o", str(out),
                            "--style", "genbioel"]) == 0
    args = prepare_el.parse_args(["--dataset", "jsonl", "--input", str(out), "-o", str(tmp_path / "s2"),
                                  "--style", "genbioel"])
    ctx = el_prepare.Context()
    splits, _ = el_prepare.read_inputs(args, ctx)
    train = splits[""]["train"]  # train + dev: the dev mention's target comes from the dev dictionary
    assert [(m.mention, ctx.origin[id(m)]) for m in train] == [("Gout", "train"), ("Rickets", "dev")]
    assert args.genbioel_dataset == "ncbi" and ctx.synonyms["test"] == [["D1", "gout"], ["D2", "rickets"]]


def test_prepare_el_reports_a_bad_record_as_file_line(tmp_path, capsys):
    """A bad annotation line is skipped and named ``PROG: skipped FILE:LINE: reason`` (the file
    line, found here by searching the text), listed in report.json; exit 3."""
    corpus = tiny_ncbi(tmp_path / "ncbi", [("Gout.", "Gout", f"D{pmid}") for pmid in (1, 2, 3)])
    test = corpus / "NCBItestset_corpus.txt"
    text = test.read_text() + "4|t|Gout again.\n4|a|\n4\tzero\t4\tGout\tSpecificDisease\tD1\n\n"
    test.write_text(text)
    line = text.splitlines().index("4\tzero\t4\tGout\tSpecificDisease\tD1") + 1
    out = tmp_path / "out"
    assert prepare_el.main(["--dataset", "ncbi", "--input", str(corpus), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    expected = f"{test}:{line}: offsets 'zero', '4' are not integers"
    assert f"biobart-prepare-el: skipped {expected}\n" in err
    assert f"biobart-prepare-el: 1 bad record(s) skipped (all in {out / 'report.json'})" in err
    assert json.loads((out / "report.json").read_text())["bad_records"] == [expected]
