"""biobart-convert: BART / BioBART weights between Hugging Face format and fairseq checkpoints."""

import argparse
import os
import sys

from .. import errors

PROG = "biobart-convert"


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog=PROG,
        description="Convert BART-family weights (facebook/bart-base, facebook/bart-large, "
        "GanjinZero/biobart-base/-large) between Hugging Face format and fairseq checkpoints, "
        "with index-exact GPT-2 BPE vocabularies. Runs offline on local folders.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{hf-to-fairseq,fairseq-to-hf}")
    h = sub.add_parser(
        "hf-to-fairseq", allow_abbrev=False,
        help="HF folder -> fairseq model.pt + dict.txt/encoder.json/vocab.bpe/bpe.json",
        description="Write OUT/model.pt (a fairseq checkpoint for --task biomed_denoising, usable with "
        "fairseq-train --restore-file OUT/model.pt --reset-optimizer --reset-dataloader --reset-meters, "
        "also for --task translation), and OUT/dict.txt, OUT/encoder.json, OUT/vocab.bpe, OUT/bpe.json "
        "for biobart-binarize --bpe gpt2 and biobart_fairseq.from_pretrained(OUT, 'model.pt').",
    )
    h.add_argument("--hf-dir", required=True,
                   help="HF model folder with config.json, model.safetensors or pytorch_model.bin, vocab.json, merges.txt")
    h.add_argument("--out-dir", required=True, help="destination folder (created if needed; files in it are overwritten)")
    f = sub.add_parser(
        "fairseq-to-hf", allow_abbrev=False,
        help="fairseq BART checkpoint -> HF folder (config.json, generation_config.json, model.safetensors, tokenizer)",
        description="Write an HF folder that BartForConditionalGeneration.from_pretrained and "
        "AutoTokenizer.from_pretrained load offline, and whose generate() decodes as fairseq-generate "
        "does: a fine-tuned seq2seq checkpoint (--task translation / biomed_translation, the recipes' "
        "checkpoints/checkpoint_best.pt) or a pretrained BART (biomed_denoising, biobart-convert's model.pt). "
        "Decoding settings: the flags below, else the recipe's results.json next to the checkpoint, else "
        "fairseq-generate's defaults.",
    )
    f.add_argument("--checkpoint", required=True, help="fairseq BART checkpoint (e.g. checkpoints/checkpoint_best.pt)")
    f.add_argument("--data-dir",
                   help="folder with the model's dictionary (dict.txt, or dict.source.txt/dict.target.txt of a "
                   "fine-tuning data-bin) and GPT-2 BPE (bpe.json or encoder.json + vocab.bpe); default: the data "
                   "folder the checkpoint was trained on (recorded in it)")
    f.add_argument("--out-dir", required=True, help="destination folder for the HF files (created if needed)")
    g = f.add_argument_group("decoding (written to generation_config.json)")
    g.add_argument("--settings", help="results.json whose 'decoding' to use (default: CHECKPOINT's folder/results.json)")
    g.add_argument("--beam", type=int, help="beam size (fairseq --beam; HF num_beams)")
    g.add_argument("--lenpen", type=float, help="length penalty (fairseq --lenpen; HF length_penalty)")
    g.add_argument("--max-len-b", type=int,
                   help="most text tokens (fairseq --max-len-b with --max-len-a 0; HF max_length = this + 2)")
    g.add_argument("--min-len", type=int, help="fewest text tokens (fairseq --min-len; HF min_length = this + 1)")
    g.add_argument("--no-repeat-ngram-size", type=int, help="n-gram blocking (0 = off)")
    g.add_argument("--forced-bos", choices=["auto", "yes", "no"], default="auto",
                   help="start the output with <s> (HF forced_bos_token_id 0): auto = when the model's targets "
                   "begin with <s> (pretrained BART; not our fine-tuning recipes, whose targets do not)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from biobart_fairseq.convert import fairseq_to_hf, hf_to_fairseq

    try:
        if args.command == "hf-to-fairseq":
            info = hf_to_fairseq(args.hf_dir, args.out_dir)
            print(f"wrote {os.path.join(args.out_dir, 'model.pt')} (arch {info['arch']}, {info['rows']} rows"
                  + (", <mask> row added" if info["added_mask_row"] else "") + ") and dict.txt, encoder.json, "
                  "vocab.bpe, bpe.json")
        else:
            decoding = {"beam": args.beam, "lenpen": args.lenpen, "max_len_b": args.max_len_b,
                        "min_len": args.min_len, "no_repeat_ngram_size": args.no_repeat_ngram_size}
            forced = {"auto": None, "yes": True, "no": False}[args.forced_bos]
            info = fairseq_to_hf(args.checkpoint, args.data_dir, args.out_dir, settings=args.settings,
                                 decoding=decoding, forced_bos=forced)
            print(f"wrote HF model to {args.out_dir} (--task {info['task']}, {info['rows']} rows, "
                  f"{info['vocab']} vocabulary entries, dictionary {info['dictionary']})")
            d, src = info["decoding"], info["decoding_from"]
            print("generation_config.json: " + ", ".join(f"{k} {v} ({src[k]})" for k, v in d.items())
                  + f"; decoder starts </s>{' <s>' if info['forced_bos'] else ''}; inputs "
                  + ("<s> text </s>" if info["bos_source"] else "text </s> (AutoTokenizer)"))
    except (errors.Unusable, FileNotFoundError) as e:
        return errors.fail(PROG, str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
