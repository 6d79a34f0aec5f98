"""BART weights: Hugging Face format <-> fairseq checkpoint, index-exact vocabularies.

Why this works:

* HF token ids *are* fairseq dictionary indices (0 ``<s>``, 1 ``<pad>``, 2 ``</s>``,
  3 ``<unk>``, then ``dict.txt`` order), so embedding rows are copied as they are.
  fairseq's gpt2 BPE writes GPT-2 ids as strings and ``dict.txt`` maps those strings to
  indices; we therefore synthesize ``encoder.json`` = HF ``vocab.json`` and a ``dict.txt``
  whose line k is ``str(k + 4)``: symbol ``"i"`` <-> index i <-> HF id i.
* ``<mask>`` may sit at any id.  As the last id (facebook/bart-*, BioBART) it stays out of
  ``dict.txt``, exactly like fairseq's own BART ``dict.txt``: the tasks append it with
  ``add_symbol``, so it lands at ``4 + lines``.  Anywhere else (Hugging Face's
  tokenizer-training recipe, ``special_tokens=["<s>","<pad>","</s>","<unk>","<mask>"]``,
  puts it at id 4) ``dict.txt`` carries a ``<mask>`` line at its index; ``add_symbol``
  then returns that index instead of appending, so nothing moves.
* Parameter names are identical once HF's ``model.`` prefix is stripped.  Tied copies
  (``shared``, ``lm_head``, both ``embed_tokens``, fairseq's ``output_projection``) are one
  matrix on both sides; safetensors keeps only one of them, so we rebuild the others.
* The fairseq model is built by fairseq itself from a parsed command line and the weights
  are loaded with ``strict=True``: a key we do not know or a missing key is an error,
  never a silently partial model.
"""

import json
import os
import re

import torch

from ..errors import Unusable

SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
MASK = "<mask>"

# fairseq 0.12.2 layers also stored BetterTransformer copies of their weights
# (transformers #19260); they duplicate q/k/v/fc weights and have no HF counterpart.
BT_KEY = re.compile(r"^(encoder|decoder)\.layers\.\d+\.(in_proj|out_proj|fc1|fc2|norm1|norm2)_(weight|bias)$")
# HF activation names that mean the same function in fairseq.
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "tanh": "tanh"}
STOCK_ARCHS = {
    # arch: (d_model, layers, heads, ffn)
    "bart_base": (768, 6, 12, 3072),
    "bart_large": (1024, 12, 16, 4096),
}


class ConversionError(Unusable):
    """A one-line, user-facing reason (names the file or key at fault): errors.Unusable, exit 2."""


# --- small helpers --------------------------------------------------------------------------
def _need(path):
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: not found")
    return path


def _read_json(path):
    try:
        with open(_need(path), encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ConversionError(f"{path}: not valid JSON ({e})") from None


def _byte_chars():
    from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode

    return set(bytes_to_unicode().values())


def load_hf_state_dict(hf_dir):
    """Tensors of an HF checkpoint: model.safetensors (single or sharded) or pytorch_model.bin."""
    st, st_index = os.path.join(hf_dir, "model.safetensors"), os.path.join(hf_dir, "model.safetensors.index.json")
    pt, pt_index = os.path.join(hf_dir, "pytorch_model.bin"), os.path.join(hf_dir, "pytorch_model.bin.index.json")
    if os.path.isfile(st) or os.path.isfile(st_index):
        from safetensors.torch import load_file

        files = [st] if os.path.isfile(st) else sorted(set(_read_json(st_index)["weight_map"].values()))
        sd = {}
        for f in files:
            sd.update(load_file(os.path.join(hf_dir, os.path.basename(f))))
        return sd
    if os.path.isfile(pt) or os.path.isfile(pt_index):
        files = [pt] if os.path.isfile(pt) else sorted(set(_read_json(pt_index)["weight_map"].values()))
        sd = {}
        for f in files:
            # plain tensors only: weights_only keeps untrusted pickles from running code
            sd.update(torch.load(os.path.join(hf_dir, os.path.basename(f)), map_location="cpu", weights_only=True))
        return sd
    raise ConversionError(f"{hf_dir}: no model.safetensors or pytorch_model.bin")


# --- HF config -> fairseq model arguments ---------------------------------------------------
def dims_from_hf_config(config, path="config.json"):
    """Validate an HF BART config and return the fairseq dimensions it implies."""

    def bad(key, why):
        return ConversionError(f"{path}: {key}={config.get(key)!r}: {why}")

    if config.get("model_type") != "bart":
        raise bad("model_type", "only BART is supported (mBART and others are pre-norm or differ)")
    # Keys of older/other configs that change the computation and have no fairseq BART equivalent.
    for key, why in (
        ("normalize_before", "pre-norm (mBART-style) layers are not BART's post-norm"),
        ("add_final_layer_norm", "a final layer norm is not part of fairseq's BART"),
        ("scale_embedding", "fairseq BART does not scale embeddings (no_scale_embedding)"),
        ("static_position_embeddings", "fairseq BART uses learned positions"),
        ("add_bias_logits", "fairseq BART has no output bias"),
    ):
        if config.get(key):
            raise bad(key, why)
    if config.get("activation_function", "gelu") not in ACTIVATIONS:
        raise bad("activation_function", f"supported: {sorted(ACTIVATIONS)}")
    for key, want in (("pad_token_id", 1), ("bos_token_id", 0), ("eos_token_id", 2)):
        if config.get(key, want) != want:
            raise bad(key, f"must be {want} (fairseq dictionary layout)")
    for key in ("d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim",
                "max_position_embeddings", "vocab_size"):
        if not isinstance(config.get(key), int):
            raise bad(key, "missing or not an integer")
    return {
        "d_model": config["d_model"],
        "encoder_layers": config["encoder_layers"],
        "decoder_layers": config["decoder_layers"],
        "encoder_attention_heads": config["encoder_attention_heads"],
        "decoder_attention_heads": config["decoder_attention_heads"],
        "encoder_ffn_dim": config["encoder_ffn_dim"],
        "decoder_ffn_dim": config["decoder_ffn_dim"],
        "max_position_embeddings": config["max_position_embeddings"],
        "activation_function": ACTIVATIONS[config.get("activation_function", "gelu")],
        "dropout": float(config.get("dropout", 0.1)),
        "attention_dropout": float(config.get("attention_dropout", 0.0)),
        "activation_dropout": float(config.get("activation_dropout", 0.0)),
    }


def fairseq_arch_args(dims):
    """fairseq-train style flags that rebuild exactly these dimensions.

    The stock arch name is kept when the shape matches (so the cfg reads ``bart_base`` /
    ``bart_large``); every dimension is passed explicitly anyway, because HF configs differ
    from fairseq's arch defaults in details such as dropouts.
    """
    shape = lambda d, l, h, f: (d, l, h, f)  # noqa: E731
    arch = "bart_base"
    for name, ref in STOCK_ARCHS.items():
        if all(
            shape(dims["d_model"], dims[f"{side}_layers"], dims[f"{side}_attention_heads"], dims[f"{side}_ffn_dim"]) == ref
            for side in ("encoder", "decoder")
        ):
            arch = name
    d = dims
    return [
        "--arch", arch,
        "--encoder-embed-dim", str(d["d_model"]), "--decoder-embed-dim", str(d["d_model"]),
        "--encoder-layers", str(d["encoder_layers"]), "--decoder-layers", str(d["decoder_layers"]),
        "--encoder-attention-heads", str(d["encoder_attention_heads"]),
        "--decoder-attention-heads", str(d["decoder_attention_heads"]),
        "--encoder-ffn-embed-dim", str(d["encoder_ffn_dim"]), "--decoder-ffn-embed-dim", str(d["decoder_ffn_dim"]),
        "--max-source-positions", str(d["max_position_embeddings"]),
        "--max-target-positions", str(d["max_position_embeddings"]),
        "--activation-fn", d["activation_function"],
        "--dropout", repr(d["dropout"]), "--attention-dropout", repr(d["attention_dropout"]),
        "--activation-dropout", repr(d["activation_dropout"]),
        # BART's invariants, explicit so a non-stock arch cannot drift from them
        "--share-all-embeddings", "--share-decoder-input-output-embed", "--layernorm-embedding",
        "--no-scale-embedding",
    ]


def build_fairseq_model(data_dir, arch_args, task="biomed_denoising"):
    """(cfg, model) built by fairseq itself, as fairseq-train would for ``data_dir``."""
    from .. import register

    register()  # biomed_denoising and the torch.load workaround (the package may have been imported light)
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [data_dir, "--task", task, *arch_args])
    cfg = convert_namespace_to_omegaconf(args)
    fs_task = tasks.setup_task(cfg.task)
    return cfg, fs_task.build_model(cfg.model)


def _load_strict(model, sd, what):
    """load_state_dict(strict=True) with a one-line message naming the first bad key."""
    expected = {k for k in model.state_dict() if not k.endswith(".version")}
    given = {k for k in sd if not k.endswith(".version")}
    if given - expected:
        raise ConversionError(f"{what}: unknown weight key {sorted(given - expected)[0]!r}")
    if expected - given:
        raise ConversionError(f"{what}: missing weight key {sorted(expected - given)[0]!r}")
    ref = model.state_dict()
    for k in sorted(given):
        if tuple(sd[k].shape) != tuple(ref[k].shape):
            raise ConversionError(
                f"{what}: weight {k!r} has shape {tuple(sd[k].shape)}, the config implies {tuple(ref[k].shape)}"
            )
    return model.load_state_dict(sd, strict=True)


# --- vocabulary ---------------------------------------------------------------------------
def check_hf_vocab(vocab, n_rows, path="vocab.json"):
    """Validate HF vocab.json against the embedding rows; return (has_mask, max_id)."""
    for tok, i in SPECIALS.items():
        if vocab.get(tok) != i:
            raise ConversionError(f"{path}: {tok!r} must have id {i} (fairseq dictionary layout)")
    chars = _byte_chars()
    missing = sorted(chars - set(vocab))
    if missing:
        raise ConversionError(
            f"{path}: byte-level symbol {missing[0]!r} missing: not a GPT-2 byte-level BPE vocabulary"
        )
    for tok in vocab:
        if tok not in SPECIALS and tok != MASK and not set(tok) <= chars:
            raise ConversionError(
                f"{path}: token {tok!r} is not a byte-level BPE token: vocabulary not GPT-2 compatible "
                "(e.g. BioBART-v2)"
            )
    ids = sorted(vocab.values())
    if len(set(ids)) != len(ids):
        raise ConversionError(f"{path}: two tokens share an id")
    max_id = ids[-1]
    has_mask = MASK in vocab
    if max_id + 1 != n_rows:
        raise ConversionError(f"{path}: ids go up to {max_id} but the embeddings have {n_rows} rows (vocab_size)")
    return has_mask, max_id


def write_fairseq_vocab(vocab, merges_path, out_dir, has_mask, max_id):
    """encoder.json (= vocab.json), dict.txt (symbol str(i) at index i), vocab.bpe, bpe.json."""
    with open(os.path.join(out_dir, "encoder.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    present = set(vocab.values())
    mask_id = vocab[MASK] if has_mask else None
    # a last-id <mask> is appended by the tasks (fairseq's BART layout); any other id needs its line
    last_line = max_id - 1 if mask_id == max_id else max_id
    with open(os.path.join(out_dir, "dict.txt"), "w", encoding="utf-8") as f:
        for n, i in enumerate(range(4, last_line + 1)):
            if i == mask_id:
                f.write(f"{MASK} 1\n")
            elif i in present:
                f.write(f"{i} 1\n")
            else:  # an id without a token still needs its line so later lines keep their index
                f.write(f"madeupword{n:04d} 0\n")
    with open(merges_path, encoding="utf-8") as f:
        merges = f.read()
    # fairseq's get_encoder drops the first line (the "#version" header) and the last
    # (expects a trailing newline): normalise so no merge is lost.
    if not merges.startswith("#version"):
        merges = "#version: 0.2\n" + merges
    if not merges.endswith("\n"):
        merges += "\n"
    with open(os.path.join(out_dir, "vocab.bpe"), "w", encoding="utf-8") as f:
        f.write(merges)
    with open(os.path.join(out_dir, "bpe.json"), "w", encoding="utf-8") as f:
        json.dump({"type": "gpt2", "encoder_json": "encoder.json", "vocab_bpe": "vocab.bpe"}, f, indent=1)


# --- HF -> fairseq ------------------------------------------------------------------------
def hf_state_to_fairseq(hf_sd, has_mask):
    """Rename HF tensors to fairseq's names; rebuild tied copies; check what is dropped."""
    sd = {}
    extra = {}
    for k, v in hf_sd.items():
        if k.startswith("model."):
            sd[k[len("model."):]] = v
        else:
            extra[k] = v
    shared = sd.pop("shared.weight", None)
    if shared is None:
        shared = sd.get("encoder.embed_tokens.weight", sd.get("decoder.embed_tokens.weight"))
    if shared is None:
        raise ConversionError("weights: missing weight key 'model.shared.weight'")
    for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        if k in sd and not torch.equal(sd[k], shared):
            raise ConversionError(f"weights: 'model.{k}' differs from model.shared.weight (fairseq BART shares all embeddings)")
    lm_head = extra.pop("lm_head.weight", None)
    if lm_head is not None and not torch.equal(lm_head, shared):
        raise ConversionError(
            "weights: 'lm_head.weight' differs from model.shared.weight: an untied output layer "
            "is not supported by fairseq BART (share_decoder_input_output_embed)"
        )
    bias = extra.pop("final_logits_bias", None)
    if bias is not None and bias.abs().max().item() != 0:
        raise ConversionError("weights: 'final_logits_bias' is not zero; fairseq BART has no output bias")
    if extra:
        raise ConversionError(f"weights: unknown weight key {sorted(extra)[0]!r}")
    if not has_mask:
        # fairseq's denoising dictionary always ends with <mask>; give it a fresh row,
        # the mean embedding (a neutral start for fine-tuning), leaving real ids untouched.
        shared = torch.cat([shared, shared.mean(0, keepdim=True)], 0)
    for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight"):
        sd[k] = shared.clone()
    return sd


def _save_checkpoint(cfg, model, path):
    """A checkpoint dict shaped like the one fairseq's trainer writes."""
    from fairseq import checkpoint_utils
    from omegaconf import OmegaConf

    state = {
        "args": None,
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": model.state_dict(),
        "criterion": {},
        # fairseq's loader indexes the last entry; num_updates 0 = a model nobody trained here yet
        "optimizer_history": [
            {"criterion_name": "CrossEntropyCriterion", "optimizer_name": "none",
             "lr_scheduler_state": {}, "num_updates": 0, "best_loss": None}
        ],
        "task_state": {},
        # epoch 1, nothing consumed: --restore-file starts a fresh epoch
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "shuffle": True, "version": 2}},
        "last_optimizer_state": None,
    }
    checkpoint_utils.torch_persistent_save(state, path)


def hf_to_fairseq(hf_dir, out_dir):
    """HF BART folder -> OUT/{model.pt, dict.txt, encoder.json, vocab.bpe, bpe.json}. Returns a summary."""
    hf_dir, out_dir = os.path.abspath(hf_dir), os.path.abspath(out_dir)
    config_path = os.path.join(hf_dir, "config.json")
    config = _read_json(config_path)
    dims = dims_from_hf_config(config, config_path)
    vocab_path, merges_path = _need(os.path.join(hf_dir, "vocab.json")), _need(os.path.join(hf_dir, "merges.txt"))
    vocab = _read_json(vocab_path)
    hf_sd = load_hf_state_dict(hf_dir)
    emb = hf_sd.get("model.shared.weight", hf_sd.get("model.encoder.embed_tokens.weight"))
    if emb is None:
        raise ConversionError(f"{hf_dir}: missing weight key 'model.shared.weight'")
    n_rows = emb.shape[0]
    if config["vocab_size"] != n_rows:
        raise ConversionError(f"{config_path}: vocab_size={config['vocab_size']} but the embeddings have {n_rows} rows")
    has_mask, max_id = check_hf_vocab(vocab, n_rows, vocab_path)
    fs_sd = hf_state_to_fairseq(hf_sd, has_mask)

    os.makedirs(out_dir, exist_ok=True)
    write_fairseq_vocab(vocab, merges_path, out_dir, has_mask, max_id)
    cfg, model = build_fairseq_model(out_dir, fairseq_arch_args(dims))
    from fairseq.data import Dictionary

    d = Dictionary.load(os.path.join(out_dir, "dict.txt"))
    mask_idx = d.add_symbol(MASK)
    want_mask = vocab[MASK] if has_mask else n_rows
    if mask_idx != want_mask:  # the invariant everything above relies on
        raise ConversionError(f"{out_dir}/dict.txt: <mask> would get index {mask_idx}, expected {want_mask}")
    _load_strict(model, fs_sd, hf_dir)
    _save_checkpoint(cfg, model, os.path.join(out_dir, "model.pt"))
    return {"arch": cfg.model.arch if "arch" in cfg.model else cfg.model._name, "rows": len(d), "added_mask_row": not has_mask}


# --- fairseq -> HF ------------------------------------------------------------------------
def _model_cfg(state, path):
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    if state.get("cfg") is not None:
        return state["cfg"]["model"]
    if state.get("args") is not None:
        return convert_namespace_to_omegaconf(state["args"]).model
    raise ConversionError(f"{path}: no 'cfg' or 'args' in the checkpoint")


def hf_config_from_fairseq(m, n_rows, path):
    """BartConfig kwargs from a fairseq model cfg (rejecting what HF's BART cannot express)."""

    def get(key, default=None):
        return m.get(key, default) if hasattr(m, "get") else getattr(m, key, default)

    name = str(get("_name", get("arch", "")))
    if not name.startswith(("bart", "biobart")):  # biobart_*: the same parameters (models/biobart_transformer.py)
        raise ConversionError(f"{path}: model arch {name!r} is not a BART architecture")
    for key, want in (
        ("encoder_normalize_before", False), ("decoder_normalize_before", False), ("layernorm_embedding", True),
        ("no_scale_embedding", True), ("share_all_embeddings", True), ("share_decoder_input_output_embed", True),
        ("encoder_learned_pos", True), ("decoder_learned_pos", True),
    ):
        if bool(get(key, want)) != want:
            raise ConversionError(f"{path}: model.{key}={get(key)!r} is not supported (HF BART needs {want})")
    d = get("encoder_embed_dim")
    if get("decoder_embed_dim") != d:
        raise ConversionError(f"{path}: model.decoder_embed_dim differs from encoder_embed_dim")
    if get("max_target_positions") != get("max_source_positions"):
        raise ConversionError(f"{path}: model.max_target_positions differs from max_source_positions")
    act = get("activation_fn", "gelu")
    if act not in ACTIVATIONS.values():
        raise ConversionError(f"{path}: model.activation_fn={act!r} is not supported")
    return dict(
        vocab_size=n_rows, d_model=d,
        encoder_layers=get("encoder_layers"), decoder_layers=get("decoder_layers"),
        encoder_attention_heads=get("encoder_attention_heads"), decoder_attention_heads=get("decoder_attention_heads"),
        encoder_ffn_dim=get("encoder_ffn_embed_dim"), decoder_ffn_dim=get("decoder_ffn_embed_dim"),
        max_position_embeddings=get("max_source_positions"), activation_function=act,
        dropout=float(get("dropout", 0.1)), attention_dropout=float(get("attention_dropout", 0.0)),
        activation_dropout=float(get("activation_dropout", 0.0)),
        # decoding settings (forced BOS/EOS, beam, lengths) go to generation_config.json
        scale_embedding=False, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
        is_encoder_decoder=True, tie_word_embeddings=True,
    )


# --- fairseq -> HF: which files, which decoding -------------------------------------------
# Tasks whose checkpoints HF's generate() decodes as fairseq does: fine-tuned seq2seq models
# and the pretrained (denoising) BART.  The entity-linking and NER models are BART too, but their
# decoding (a trie of names, pointers to source words) has no HF counterpart.
SEQ2SEQ_TASKS = ("translation", "biomed_translation")
DENOISING_TASKS = ("denoising", "biomed_denoising")
# fairseq-generate's own defaults, for settings neither a flag nor the recipe's results.json gives
GENERATE_DEFAULTS = {"beam": 5, "lenpen": 1.0, "max_len_b": 200, "min_len": 1, "no_repeat_ngram_size": 0}


def _task_cfg(state, path):
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    if state.get("cfg") is not None:
        return state["cfg"]["task"]
    if state.get("args") is not None:
        return convert_namespace_to_omegaconf(state["args"]).task
    raise ConversionError(f"{path}: no 'cfg' or 'args' in the checkpoint")


def _cfg_get(c, key, default=None):
    return c.get(key, default) if hasattr(c, "get") else getattr(c, key, default)


def exportable_task(task_cfg, path):
    """The task name, or ConversionError for a checkpoint that is not a seq2seq/denoising BART."""
    name = str(_cfg_get(task_cfg, "_name", _cfg_get(task_cfg, "task", "")))
    if name not in SEQ2SEQ_TASKS + DENOISING_TASKS:
        raise ConversionError(
            f"{path}: a --task {name} checkpoint: fairseq-to-hf exports seq2seq models (--task "
            "translation / biomed_translation, the dialogue and summarization recipes) and pretrained "
            "BART (biomed_denoising); this task's decoding has no Hugging Face generate() counterpart")
    return name


def find_data_dir(data_dir, task_cfg, checkpoint):
    """``data_dir``, or else the data folder the checkpoint was trained on (its cfg.task.data)."""
    if data_dir:
        if not os.path.isdir(data_dir):
            raise ConversionError(f"{data_dir}: no such folder")
        return data_dir
    recorded = str(_cfg_get(task_cfg, "data", "") or "").split(os.pathsep)[0]
    # relative paths were relative to where fairseq-train ran: try there and next to the checkpoint
    for cand in (recorded, os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "..", recorded)):
        if recorded and os.path.isdir(cand):
            return cand
    raise ConversionError(f"{checkpoint}: trained on data folder {recorded!r}, which is not there; "
                          "pass --data-dir (the folder with its dictionary and BPE files)")


def find_dictionary(data_dir, task_cfg):
    """dict.txt (pretraining folders, biobart-convert's output) or the translation task's
    dict.{source,target}.txt, which BART fine-tuning shares (one embedding matrix)."""
    plain = os.path.join(data_dir, "dict.txt")
    if os.path.isfile(plain):
        return plain
    src, tgt = (_cfg_get(task_cfg, k) or d for k, d in (("source_lang", "source"), ("target_lang", "target")))
    paths = [os.path.join(data_dir, f"dict.{lang}.txt") for lang in (src, tgt)]
    have = [p for p in paths if os.path.isfile(p)]
    if not have:
        raise ConversionError(f"{data_dir}: neither dict.txt nor dict.{src}.txt/dict.{tgt}.txt: not the "
                              "model's data folder (pass --data-dir DATA, e.g. the recipe's data-bin)")
    if len(have) == 2:
        with open(paths[0], encoding="utf-8") as a, open(paths[1], encoding="utf-8") as b:
            if a.read() != b.read():
                raise ConversionError(f"{paths[1]}: differs from {paths[0]}; HF BART has one vocabulary "
                                      "(the model must share source and target dictionaries)")
    return have[-1]


def find_bpe_files(data_dir):
    """(encoder.json, vocab.bpe) of the folder's GPT-2 BPE (named by its bpe.json, or by name)."""
    info_path = os.path.join(data_dir, "bpe.json")
    if os.path.isfile(info_path):
        from ..data import bpe as B

        try:
            info = B.read_info(info_path)
        except B.BpeError as e:
            raise ConversionError(str(e)) from None
        if info["type"] != "gpt2":
            raise ConversionError(
                f"{info_path}: a {info['type']} BPE; Hugging Face BART's tokenizer is GPT-2's byte-level "
                "BPE, so only models fine-tuned with --bpe gpt2 (BART/BioBART's vocabulary) are exported")
        return _need(info["encoder_json"]), _need(info["vocab_bpe"])
    return _need(os.path.join(data_dir, "encoder.json")), _need(os.path.join(data_dir, "vocab.bpe"))


def hf_vocab_from_fairseq(dict_path, encoder_json, n_rows):
    """vocab.json for HF: token -> fairseq index, via dict.txt symbols (GPT-2 ids) and encoder.json."""
    encoder = _read_json(encoder_json)
    id_to_token = {i: t for t, i in encoder.items()}
    vocab = dict(SPECIALS)
    with open(_need(dict_path), encoding="utf-8") as f:
        symbols = [line.rstrip("\n").rsplit(" ", 1)[0] for line in f if line.strip()]
    for n, sym in enumerate(symbols):
        idx = n + 4
        if sym == MASK:
            tok = MASK  # <mask> at a non-final id (see write_fairseq_vocab)
        elif sym.lstrip("-").isdigit() and int(sym) in id_to_token:
            tok = id_to_token[int(sym)]
        elif sym.startswith("madeupword"):
            tok = sym  # fillers keep their name so vocab.json covers every row, as in HF's BART
        else:
            raise ConversionError(f"{dict_path}:{n + 1}: symbol {sym!r} is not a GPT-2 id in {encoder_json}")
        if tok in vocab:
            raise ConversionError(f"{dict_path}:{n + 1}: token {tok!r} appears twice")
        vocab[tok] = idx
    n_dict = len(symbols) + 4
    if n_rows == n_dict + 1 and MASK not in vocab:
        vocab[MASK] = n_dict  # the denoising task's <mask>, appended after dict.txt
    elif n_rows != n_dict:
        raise ConversionError(f"{dict_path}: {n_dict} symbols (with specials) do not fit {n_rows} embedding rows")
    return vocab


def starts_with_bos(task, task_cfg, data_dir, dict_path, side):
    """Whether the model's ``side`` sequences (source / target) begin with ``<s>``.

    Denoising: always (BART's pretraining text).  Translation: what the binarized data holds
    (our recipes binarize without ``<s>``, as fairseq's BART summarization recipe; data made
    for HF-style fine-tuning may carry it), read from the first split found; no data: no."""
    if task in DENOISING_TASKS:
        return True
    from fairseq.data import Dictionary, data_utils

    src, tgt = (_cfg_get(task_cfg, k) or d for k, d in (("source_lang", "source"), ("target_lang", "target")))
    d = Dictionary.load(dict_path)
    for split in ("train", "valid", "test"):
        prefix = os.path.join(data_dir, f"{split}.{src}-{tgt}.{src if side == 'source' else tgt}")
        ds = data_utils.load_indexed_dataset(prefix, d) if os.path.isfile(prefix + ".idx") else None
        if ds is not None and len(ds):
            firsts = [int(ds[i][0]) for i in range(min(len(ds), 100))]
            return all(t == d.bos() for t in firsts)
    return False


def read_decoding(checkpoint, settings=None, overrides=None):
    """Decoding settings: ``overrides`` (flags) > the recipe's results.json (``settings``, or the
    one next to the checkpoint) > fairseq-generate's defaults.  -> (settings, where they came from)."""
    path = settings or os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "results.json")
    found = {}
    if settings or os.path.isfile(path):
        found = _read_json(path).get("decoding") or {}
        if float(found.get("max_len_a", 0) or 0) != 0:
            raise ConversionError(f"{path}: max_len_a={found['max_len_a']}: HF generate() has no length "
                                  "proportional to the source (max_len_a must be 0)")
    out, source = {}, {}
    for key, default in GENERATE_DEFAULTS.items():
        given = (overrides or {}).get(key)
        if given is not None:
            out[key], source[key] = given, "flag"
        elif key in found:
            out[key], source[key] = found[key], path
        else:
            out[key], source[key] = default, "fairseq-generate default"
    out = {k: (float(v) if k == "lenpen" else int(v)) for k, v in out.items()}
    return out, source


def generation_config(decoding, forced_bos, max_positions):
    """HF GenerationConfig that decodes as fairseq's SequenceGenerator with these settings.

    Both decoders start from ``</s>`` (fairseq's prev_output_tokens; HF decoder_start_token_id 2).
    A model whose targets begin with ``<s>`` gets it forced first (fairseq's BART hub prefix;
    HF forced_bos_token_id 0); a translation-fine-tuned one (targets without ``<s>``) must not.
    Lengths: fairseq forces ``</s>`` at step ``max_len`` and bans it for the first ``min_len``
    steps; HF counts the decoder start too: ``max_length = max_len + 2`` (``</s>`` forced at
    index max_length-1), ``min_length = min_len + 1``; fairseq caps max_len at positions - 1.
    Length penalty: both divide by the generated tokens incl. the final ``</s>``; both stop when
    ``beam`` hypotheses are finished (early_stopping True).  fairseq never emits ``<pad>``."""
    from transformers import GenerationConfig

    max_len = min(decoding["max_len_b"], max_positions - 1)
    return GenerationConfig(
        # early_stopping only means something to (and is only accepted with) beam search
        num_beams=decoding["beam"], length_penalty=decoding["lenpen"], early_stopping=decoding["beam"] > 1,
        max_length=max_len + 2, min_length=decoding["min_len"] + 1,
        no_repeat_ngram_size=decoding["no_repeat_ngram_size"], do_sample=False,
        bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2,
        forced_bos_token_id=0 if forced_bos else None, forced_eos_token_id=2, suppress_tokens=[1],
    )


class FairseqMaxLength:
    """HF logits processor: end every hypothesis at the length limit as fairseq does.

    HF's ``forced_eos_token_id`` gives the forced final ``</s>`` a log-probability of 0; fairseq's
    SequenceGenerator keeps its real log-probability (it only bans every other token), so with HF's
    rule a hypothesis cut at ``max_length`` can end on another token or outrank a shorter one.
    For exactly fairseq's outputs::

        model.generate(**inputs, forced_eos_token_id=None,
                       logits_processor=[FairseqMaxLength(model.generation_config.max_length)])

    (beam search and greedy search both hand processors log-probabilities here)."""

    def __init__(self, max_length, eos_token_id=2):
        self.max_length, self.eos = max_length, eos_token_id

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] == self.max_length - 1:
            keep = scores[:, self.eos].clone()
            scores = torch.full_like(scores, float("-inf"))
            scores[:, self.eos] = keep
        return scores


def write_tokenizer(out_dir, vocab, vocab_bpe, bos_source, max_positions):
    """vocab.json + merges.txt (BartTokenizer's files) and a tokenizer that marks inputs as the
    model saw them: ``<s> text </s>`` (BART's convention: BartTokenizer), or ``text </s>`` for
    models fine-tuned on sources binarized without ``<s>`` (our recipes, fairseq's BART
    summarization recipe): a PreTrainedTokenizerFast whose tokenizer.json says so, which
    AutoTokenizer loads (BartTokenizer itself always adds ``<s>``).  ``truncation=True`` cuts
    inputs to the model's positions as fairseq's --truncate-source does (text, then ``</s>``)."""
    from transformers import BartTokenizer

    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(vocab_bpe, encoding="utf-8") as f:
        merges = f.read()
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write(merges)
    bart = BartTokenizer(vocab=os.path.join(out_dir, "vocab.json"), merges=os.path.join(out_dir, "merges.txt"),
                         model_max_length=max_positions)
    if bos_source:
        bart.save_pretrained(out_dir)  # tokenizer_config.json / tokenizer.json next to vocab.json, merges.txt
        return
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    backend = bart.backend_tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 2)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        mask_token=MASK if MASK in vocab else None, model_max_length=max_positions)
    tok.save_pretrained(out_dir)


def _hf_state(fs_sd, emb, checkpoint):
    """fairseq tensors -> HF names (tied copies checked, bookkeeping dropped)."""
    sd = {}
    for k, v in fs_sd.items():
        if k.endswith(".version") or k.endswith("_float_tensor") or BT_KEY.match(k):
            continue  # bookkeeping buffers and BetterTransformer duplicates
        if k == "decoder.output_projection.weight":
            if not torch.equal(v, emb):
                raise ConversionError(f"{checkpoint}: {k!r} differs from decoder.embed_tokens (untied output layer)")
            continue
        if k == "encoder.embed_tokens.weight" and not torch.equal(v, emb):
            raise ConversionError(f"{checkpoint}: {k!r} differs from decoder.embed_tokens (embeddings not shared)")
        sd["model." + k] = v
    sd["model.shared.weight"] = emb
    sd["lm_head.weight"] = emb
    sd["final_logits_bias"] = torch.zeros(1, emb.shape[0], dtype=emb.dtype)
    return sd


def fairseq_to_hf(checkpoint, data_dir, out_dir, settings=None, decoding=None, forced_bos=None):
    """fairseq BART checkpoint + its dictionary/BPE files -> HF folder: config.json,
    generation_config.json (decoding as fairseq-generate), model.safetensors, tokenizer.

    ``data_dir``: the folder with the dictionary (dict.txt or dict.source/target.txt) and the GPT-2
    BPE; None: the folder the checkpoint was trained on.  ``settings``: a results.json whose
    ``decoding`` to use (default: the one next to the checkpoint); ``decoding``: explicit values
    (beam, lenpen, max_len_b, min_len, no_repeat_ngram_size); ``forced_bos``: None = from the
    task and data (see :func:`starts_with_bos`)."""
    from .. import register

    register()  # the weights_only workaround: fairseq checkpoints pickle Namespace objects
    from fairseq import checkpoint_utils
    from transformers import BartConfig, BartForConditionalGeneration

    state = checkpoint_utils.load_checkpoint_to_cpu(_need(checkpoint))
    fs_sd = state.get("model")
    if fs_sd is None:
        raise ConversionError(f"{checkpoint}: no 'model' in the checkpoint")
    task_cfg = _task_cfg(state, checkpoint)
    task = exportable_task(task_cfg, checkpoint)
    emb = fs_sd.get("decoder.embed_tokens.weight")
    if emb is None:
        raise ConversionError(f"{checkpoint}: missing weight key 'decoder.embed_tokens.weight'")
    kwargs = hf_config_from_fairseq(_model_cfg(state, checkpoint), emb.shape[0], checkpoint)
    data_dir = find_data_dir(data_dir, task_cfg, checkpoint)
    dict_path = find_dictionary(data_dir, task_cfg)
    encoder_json, vocab_bpe = find_bpe_files(data_dir)
    vocab = hf_vocab_from_fairseq(dict_path, encoder_json, emb.shape[0])
    dec, dec_source = read_decoding(checkpoint, settings, decoding)
    if forced_bos is None:
        forced_bos = starts_with_bos(task, task_cfg, data_dir, dict_path, "target")
    bos_source = starts_with_bos(task, task_cfg, data_dir, dict_path, "source")

    model = BartForConditionalGeneration(BartConfig(**kwargs))
    _load_strict(model, _hf_state(fs_sd, emb, checkpoint), checkpoint)
    model.eval()
    model.generation_config = generation_config(dec, forced_bos, kwargs["max_position_embeddings"])
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    write_tokenizer(out_dir, vocab, vocab_bpe, bos_source, kwargs["max_position_embeddings"])
    return {"rows": emb.shape[0], "vocab": len(vocab), "task": task, "dictionary": dict_path,
            "forced_bos": bool(forced_bos), "bos_source": bos_source, "decoding": dec, "decoding_from": dec_source}
