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
        help="fairseq BART checkpoint -> HF folder (config.json, model.safetensors, vocab.json, merges.txt)",
        description="Write an HF folder that BartForConditionalGeneration.from_pretrained and "
        "BartTokenizer.from_pretrained load offline.",
    )
    f.add_argument("--checkpoint", required=True, help="fairseq BART checkpoint (e.g. checkpoints/checkpoint_best.pt)")
    f.add_argument("--data-dir", required=True,
                   help="folder with the model's dict.txt, encoder.json and vocab.bpe (e.g. the binarized data folder)")
    f.add_argument("--out-dir", required=True, help="destination folder for the HF files (created if needed)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from biobart_fairseq.convert import ConversionError, fairseq_to_hf, hf_to_fairseq

    try:
        if args.command == "hf-to-fairseq":
            info = hf_to_fairseq(args.hf_dir, args.out_dir)
            print(f"wrote {os.path.join(args.out_dir, 'model.pt')} (arch {info['arch']}, {info['rows']} rows"
                  + (", <mask> row added" if info["added_mask_row"] else "") + ") and dict.txt, encoder.json, "
                  "vocab.bpe, bpe.json")
        else:
            info = fairseq_to_hf(args.checkpoint, args.data_dir, args.out_dir)
            print(f"wrote HF model to {args.out_dir} ({info['rows']} rows, {info['vocab']} vocabulary entries)")
    except (ConversionError, FileNotFoundError) as e:
        return errors.fail(PROG, str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
