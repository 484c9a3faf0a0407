# Sourced by script/zh_task/*/run_*.sh and script/en_glue/*/*/task.sh after they set
#   TASK DATA_SUBDIR EXAMPLE (classifier|ner|ranker|mrc) and their hyper-parameters
#   BATCH_SIZE EPOCH MAX_SEQLEN LR [NUM_LABELS WEIGHT_DECAY WARMUP IN_TOKENS DOC_STRIDE EVAL_STEPS BEST_METRIC]
# Checks TASK_DATA_PATH and MODEL_PATH, sets up the venv (script/env.sh) and runs
# example/finetune_$EXAMPLE.py; extra script arguments are passed on to it.
# Environment overrides (all optional): every variable above, and
#   OUTPUT_DIR (./output/$TASK)  MAX_STEPS (default: from EPOCH)  SAVE_STEPS  LOG_STEPS  SEED
#   ERNIE_CONFIG (model config; default: the one in MODEL_PATH)  VOCAB_FILE ($MODEL_PATH/vocab.txt)
#   ERNIE_TINY=1: SentencePiece + word dict from $MODEL_PATH/subword/ (the ERNIE-tiny release layout)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
die() { echo "error ($TASK): $*" >&2; exit 2; }

[ -n "${TASK_DATA_PATH:-}" ] || die "TASK_DATA_PATH is not set: point it at the directory holding $DATA_SUBDIR/"
DATA="$TASK_DATA_PATH/$DATA_SUBDIR"
[ -d "$DATA" ] || die "TASK_DATA_PATH=$TASK_DATA_PATH has no $DATA_SUBDIR/ directory (expected $DATA/{train,dev,test})"
[ -n "${MODEL_PATH:-}" ] || die "MODEL_PATH is not set: point it at the pre-trained model (params/ or model_state.pdparams, vocab.txt)"
[ -d "$MODEL_PATH" ] || die "MODEL_PATH=$MODEL_PATH does not exist"
[ -d "$MODEL_PATH/params" ] || [ -f "$MODEL_PATH/model_state.pdparams" ] || \
  die "MODEL_PATH=$MODEL_PATH holds no pre-trained weights (expected params/ or model_state.pdparams)"
VOCAB="${VOCAB_FILE:-$MODEL_PATH/vocab.txt}"
[ -f "$VOCAB" ] || die "vocab file $VOCAB not found (put vocab.txt in MODEL_PATH or set VOCAB_FILE)"

source "$ROOT/script/env.sh"

args=(--data_dir "$DATA" --vocab_file "$VOCAB" --warm_start_from "$MODEL_PATH" --max_seqlen "$MAX_SEQLEN")
[ -n "${ERNIE_CONFIG:-}" ] && args+=(--ernie_config "$ERNIE_CONFIG")
# the original XNLI and MSRA-NER releases ship their label names in label_map.json
if [ -f "$DATA/label_map.json" ] && { [ "$EXAMPLE" = classifier ] || [ "$EXAMPLE" = ner ]; }; then
  args+=(--label_map "$DATA/label_map.json")
fi
[ -n "${NUM_LABELS:-}" ] && args+=(--num_labels "$NUM_LABELS")
[ -n "${BEST_METRIC:-}" ] && args+=(--best_metric "$BEST_METRIC")
[ -n "${DOC_STRIDE:-}" ] && args+=(--doc_stride "$DOC_STRIDE")
if [ "${ERNIE_TINY:-0}" = 1 ]; then
  if [ "$EXAMPLE" = ner ]; then
    args+=(--use_sentence_piece_vocab)  # NER keeps one token per character, looked up in the tiny vocab
  else
    SP="$MODEL_PATH/subword/spm_cased_simp_sampled.model"; WD="$MODEL_PATH/subword/dict.wordseg.pickle"
    [ -f "$SP" ] && [ -f "$WD" ] || die "ERNIE-tiny needs $SP and $WD (the subword/ dir of the release)"
    args+=(--sentence_piece_model "$SP" --word_dict "$WD")
  fi
fi
max_steps=""
[ -n "${MAX_STEPS:-}" ] && max_steps=", \"max_steps\": $MAX_STEPS"
run_config="{\"model_dir\": \"${OUTPUT_DIR:-./output/$TASK}\", \"eval_steps\": ${EVAL_STEPS:-100},
  \"save_steps\": ${SAVE_STEPS:-1000}, \"log_steps\": ${LOG_STEPS:-10}, \"seed\": ${SEED:-1}$max_steps}"
hparam="{\"batch_size\": $BATCH_SIZE, \"epoch\": $EPOCH, \"learning_rate\": $LR,
  \"weight_decay\": ${WEIGHT_DECAY:-0.01}, \"warmup_proportion\": ${WARMUP:-0.0}, \"in_tokens\": ${IN_TOKENS:-false}}"

echo "[$TASK] data $DATA, model $MODEL_PATH, batch $BATCH_SIZE, epochs $EPOCH, max_seqlen $MAX_SEQLEN, lr $LR"
exec python "$ROOT/example/finetune_$EXAMPLE.py" "${args[@]}" --run_config "$run_config" --hparam "$hparam" "$@"
