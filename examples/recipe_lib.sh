# Shared by the fine-tuning recipes (examples/*_common.sh): failure messages, the settings
# record of a work folder (explicit resume), and SMALL=1 inputs.  Sourced, not run.

# recipe_step TEXT [LOG]: print the step heading; a failure inside the step names it and LOG
# (default: the output above; see recipe_on_failure).
recipe_step() {
  RECIPE_STEP=$1 RECIPE_LOG=${2:-the output above}
  echo "== $1"
}

# recipe_on_failure NAME: when a command fails (set -e, pipefail included), print one line with
# the recipe, the step and where its log is, then exit with the command's status.
recipe_on_failure() {
  RECIPE_NAME=$1 RECIPE_LOG=${RECIPE_LOG:-the output above} RECIPE_STEP=${RECIPE_STEP:-start}
  set -E  # the trap also fires inside functions
  trap 'rc=$?; trap - ERR; echo "$RECIPE_NAME: step \"$RECIPE_STEP\" failed (exit $rc); log: $RECIPE_LOG" >&2; exit $rc' ERR
}

# recipe_guard WORK CHECKPOINT VAR... : the values of VAR... are the settings of the run in WORK,
# recorded in WORK/settings.txt.  A WORK folder built with other settings stops the recipe with
# the differing settings named and two choices: RESUME=1 (continue from what is there, recording
# the new settings) or FRESH=1 (move the old folder aside and start over).  Resuming from an
# existing CHECKPOINT is announced, never silent.
recipe_guard() {
  local work=$1 ckpt=$2 file=$1/settings.txt var old diff=""
  shift 2
  local new
  new=$(for var in "$@"; do printf '%s=%s\n' "$var" "${!var-}"; done)
  if [ "${FRESH:-0}" = 1 ] && [ -d "$work" ] && [ -n "$(ls -A "$work")" ]; then
    local aside
    aside=$work.old-$(date +%Y%m%d-%H%M%S)
    mv "$work" "$aside"
    echo "FRESH=1: the previous work folder is now $aside; starting over in $work"
  elif [ -f "$file" ]; then
    for var in "$@"; do
      old=$(grep -m1 "^$var=" "$file" | cut -d= -f2-) || old="(not recorded)"
      [ "$old" = "${!var-}" ] || diff+="  $var: '$old' then, '${!var-}' now"$'\n'
    done
    if [ -n "$diff" ] && [ "${RESUME:-0}" != 1 ]; then
      {
        echo "$work was built with other settings:"
        printf '%s' "$diff"
        echo "Choose: RESUME=1 to continue from what is there with the new settings, or FRESH=1 to move"
        echo "the old folder aside and start over (or set WORK to another folder)."
      } >&2
      exit 2
    fi
    [ -n "$diff" ] && printf 'RESUME=1: continuing in %s with changed settings:\n%s' "$work" "$diff"
  elif [ -d "$work" ] && [ -n "$(ls -A "$work" 2>/dev/null)" ] && [ "${RESUME:-0}" != 1 ]; then
    echo "$work holds files but no settings.txt (a run from before settings were recorded): RESUME=1 to" >&2
    echo "continue from what is there, FRESH=1 to move it aside and start over." >&2
    exit 2
  fi
  if [ -n "$ckpt" ] && [ -f "$ckpt" ]; then
    echo "resuming from $ckpt (FRESH=1 starts over)"
  fi
  mkdir -p "$work"
  printf '%s\n' "$new" > "$file"
}

# recipe_plugin_dir PYTHON: the folder of the installed biobart_fairseq package (fairseq's --user-dir),
# found by PYTHON without importing the package (that imports fairseq and registers everything: seconds).
recipe_plugin_dir() {
  "$1" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("biobart_fairseq").origin))'
}

# recipe_existing_inputs WORDS...: the inputs among WORDS that exist ("role=PATH" counts by its
# PATH); the others are named on stderr.  SMALL=1 runs on whatever part of a dataset is present.
recipe_existing_inputs() {
  local w
  for w in "$@"; do
    if [ -e "${w#*=}" ]; then printf '%s ' "$w"; else echo "SMALL=1: $w not found, left out" >&2; fi
  done
}

# recipe_finish_training SAVE KEEP: training has ended; keep what a user needs. KEEP (the
# checkpoint the recipe decodes with, e.g. checkpoint_best.pt) loses its optimizer state (for Adam
# two thirds of the file: BART-base 1.7 GB -> 0.56 GB; it decodes, scores, exports and starts a new
# fine-tuning as before); checkpoint_last.pt (the resume point while training) and fairseq's
# interval and epoch copies (checkpoint_E_U.pt, checkpointE.pt) are removed, and SAVE/train.done marks the run finished
# (recipe_training_done). KEEP_LAST=1 keeps checkpoint_last.pt as it is instead, to train on later.
recipe_finish_training() {
  local save=$1 keep=$2 f
  if [ ! -e "$save/$keep" ]; then  # e.g. a run with --no-save: nothing to keep or strip
    echo "training wrote no $save/$keep: nothing to strip or remove"
    return 0
  fi
  if [ "${KEEP_LAST:-0}" = 1 ] && [ "$keep" = checkpoint_last.pt ]; then
    echo "KEEP_LAST=1: $save/$keep kept with its optimizer state"
  else
    python -m biobart_fairseq.cli.strip_checkpoint "$save/$keep"
  fi
  for f in "$save"/checkpoint_[0-9]*_[0-9]*.pt "$save"/checkpoint[0-9]*.pt "$save/checkpoint_last.pt"; do
    [ -e "$f" ] && [ "$f" != "$save/$keep" ] || continue
    if [ "$f" = "$save/checkpoint_last.pt" ] && [ "${KEEP_LAST:-0}" = 1 ]; then continue; fi
    rm -f "$f" && echo "removed $f (training has ended; KEEP_LAST=1 keeps checkpoint_last.pt to train on)"
  done
  if [ "${KEEP_LAST:-0}" != 1 ]; then
    echo "training finished $(date -u +%Y-%m-%dT%H:%M:%SZ); kept $keep without optimizer state" > "$save/train.done"
  fi
}

# recipe_training_done SAVE: true (and says so) when SAVE holds a finished run whose resume point
# was not kept (SAVE/train.done): a re-run skips training and decodes again.
recipe_training_done() {
  [ -f "$1/train.done" ] || return 1
  echo "training finished before ($1/train.done): skipped, nothing to resume from (FRESH=1 starts over;"
  echo "KEEP_LAST=1 keeps checkpoint_last.pt to train on)"
}
