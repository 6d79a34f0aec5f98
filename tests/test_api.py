"""biobart_fairseq.load: the checkpoint's task picks the engine; the same outputs as the command;
a method the task does not support, or a checkpoint of another task, is a clear error."""

import json

import pytest

from conftest import run
from test_generate import fairseq_generate_lines, seq2seq_model, sources_of  # noqa: F401  (the shared model)

pytestmark = [pytest.mark.xdist_group("seq2seq_model"), pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="session")  # session, not module: the xdist group stays "seq2seq_model"
def model(seq2seq_model):  # noqa: F811
    import biobart_fairseq

    return biobart_fairseq.load(seq2seq_model)


def test_load_generates_what_the_command_and_fairseq_generate_do(model, seq2seq_model, tmp_path):  # noqa: F811
    from biobart_fairseq.data.seq2seq_readers import unescape_newlines

    ref = fairseq_generate_lines(seq2seq_model)
    sources = sources_of(seq2seq_model)[:6]
    assert model.task == "biomed_translation" and model.can == "generate"
    got = model.generate(sources)
    assert got == [unescape_newlines(ref[i][1]) for i in range(6)]
    assert model.generate(sources[2]) == got[2]  # one string in, one string out
    turns = [line.split(": ", 1) for line in sources[3].split("\n")]
    assert model.generate([turns]) == [got[3]]
    # the command on the same texts (its JSONL "output")
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(sources)))
    res = run(["biobart-generate", str(tmp_path / "q.jsonl"), "--model", str(seq2seq_model), "--quiet",
               "-o", str(tmp_path / "a.jsonl")])
    assert res.returncode == 0, res.stdout[-2000:]
    assert [json.loads(x)["output"] for x in (tmp_path / "a.jsonl").read_text().splitlines()] == got


def test_methods_the_task_does_not_support_are_clear_errors(model):
    from biobart_fairseq import errors

    with pytest.raises(errors.Unusable, match=r"a biomed_translation model cannot tag; it can generate\(\) "
                                              r"\(use a bartner_ner model to tag\)"):
        model.tag(["IL-2 gene expression requires NF-kappa B."])
    with pytest.raises(errors.Unusable, match=r"cannot link; it can generate\(\) .*biomed_entity_linking"):
        model.link([{"text": "a rash", "mentions": [{"start": 2, "end": 6}]}])
    with pytest.raises(errors.Unusable, match=r"^text 1: empty input text$"):
        model.generate(["Patient: hello", " \n "])


def test_other_engines_refuse_a_seq2seq_checkpoint_and_load_refuses_other_tasks(seq2seq_model, tmp_path):  # noqa: F811
    import torch

    import biobart_fairseq
    from biobart_fairseq import errors
    from biobart_fairseq.inference.linker import Linker
    from biobart_fairseq.inference.tagger import Tagger

    ckpt = seq2seq_model / "checkpoints" / "checkpoint_best.pt"
    for engine in (Linker, Tagger):  # what load() calls for linking / tagging checkpoints
        with pytest.raises(errors.Unusable, match=str(ckpt)):
            engine.from_path(str(ckpt))
    state = torch.load(ckpt, weights_only=False)
    state["cfg"]["task"]["_name"] = "biomed_denoising"
    pretrained = tmp_path / "pretrained.pt"
    torch.save(state, pretrained)
    with pytest.raises(errors.Unusable, match=rf"^{pretrained}: its task biomed_denoising has no inference here"):
        biobart_fairseq.load(pretrained)
    with pytest.raises(errors.Unusable, match="no such file or folder"):
        biobart_fairseq.load(tmp_path / "nothing")


@pytest.fixture(scope="session")
def ner_checkpoint(tmp_path_factory):
    """A tiny span-target BARTNER model on the first GENIA test abstract (as tests/test_tag.py
    builds its model), and that abstract's text."""
    from test_tag import genia_test_abstracts, prepare, rebuilt_text, save_checkpoint, train_tiny

    d = tmp_path_factory.mktemp("api_ner")
    abstracts = genia_test_abstracts(1)
    (d / "raw").mkdir()
    for split in ("train", "test"):
        (d / "raw" / f"{split}.jsonlines").write_text("".join(line for _, lines in abstracts for line in lines),
                                                      encoding="utf-8")
    sentences = [json.loads(line)["tokens"] for line in abstracts[0][1]]
    text = rebuilt_text(sentences)[0]
    data = prepare(d, ".jsonlines", "genia", [" ".join(s) for s in sentences], "--target-type", "span")
    cfg, model = train_tiny(data, 25, "--target-type", "span", "--max-len-a", "0.5")
    save_checkpoint(model, cfg, d / "checkpoint_best.pt")
    return d / "checkpoint_best.pt", text


def test_load_tags_what_biobart_tag_writes(ner_checkpoint, tmp_path, capsys):
    import biobart_fairseq
    from biobart_fairseq import errors
    from biobart_fairseq.cli import tag

    ckpt, text = ner_checkpoint
    m = biobart_fairseq.load(ckpt)
    assert (m.task, m.can) == ("bartner_ner", "tag")
    (tmp_path / "a.txt").write_text(text + "\n", encoding="utf-8")
    assert tag.main([str(tmp_path / "a.txt"), "--model", str(ckpt), "-o", str(tmp_path / "a.jsonl"), "--quiet"]) == 0
    capsys.readouterr()
    want = json.loads((tmp_path / "a.jsonl").read_text(encoding="utf-8"))["entities"]
    doc = m.tag(text)  # one string -> one Document
    assert [e.to_json() for e in doc.entities] == want and len(want) > 0
    assert [e.to_json() for e in m.tag([{"id": "x", "text": text}])[0].entities] == want  # a record: the same
    with pytest.raises(errors.Unusable, match=r"a bartner_ner model cannot generate; it can tag\(\)"):
        m.generate(["Patient: hello"])
