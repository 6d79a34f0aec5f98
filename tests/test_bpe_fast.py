"""data/bpe.py's fast GPT-2 engine: bit for bit fairseq's encoder on the real shared text."""


def test_fixture_is_fairseq_bart_format(gpt2_50k):
    """fairseq's own readers take the 50k BPE: 50,004 merges, 50,265 tokens, a 50,264-symbol
    dictionary (50,265 with the tasks' <mask>) in which symbol str(i) has index i."""
    from fairseq.data import Dictionary
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    enc = get_encoder(gpt2_50k["encoder_json"], gpt2_50k["vocab_bpe"])
    assert len(enc.encoder) == 50265 and len(enc.bpe_ranks) == 50004
    d = Dictionary.load(gpt2_50k["dict_txt"])
    assert len(d) == 50264 and all(d.index(str(i)) == i for i in (4, 1000, 50263))
    assert enc.decode(enc.encode("Gout is a disease.")) == "Gout is a disease."
