#!/usr/bin/env bash
# ERNIE 1.0 pre-training (knowledge-masked LM + next-sentence prediction) on the original id
# data, as the original README describes: `sh script/zh_task/pretrain.sh`.
#
# Data: demo_train_set.gz / demo_valid_set.gz and vocab.txt of the ERNIE 1.0 release
# (one example a line: token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label).
# They are copied once into $DATA_DIR (default data/ernie1, git-ignored) from $ERNIE1_DATA
# (default ../shared/reference/ernie-1.0 beside the repo). Never commit them.
#
# Overrides (environment): DATA_DIR, ERNIE1_DATA, ERNIE_CONFIG (default config/ernie_small_config.json;
# config/ernie_config.json is the real ERNIE 1.0 base), MODEL_DIR (default output/ernie1_pretrain),
# STEPS (default 100), BATCH_SIZE (32), LR (1e-4), MAX_SEQLEN (512), NPROC (1; >1 runs under
# paddle.distributed.launch). Rerunning resumes from the newest checkpoint in MODEL_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
set -eo pipefail
cd "$ERNIE_ROOT"

DATA_DIR="${DATA_DIR:-data/ernie1}"
ERNIE1_DATA="${ERNIE1_DATA:-$ERNIE_ROOT/../shared/reference/ernie-1.0}"
ERNIE_CONFIG="${ERNIE_CONFIG:-config/ernie_small_config.json}"
MODEL_DIR="${MODEL_DIR:-output/ernie1_pretrain}"
STEPS="${STEPS:-100}"
NPROC="${NPROC:-1}"

mkdir -p "$DATA_DIR"
for f in demo_train_set.gz demo_valid_set.gz vocab.txt; do
  if [ ! -f "$DATA_DIR/$f" ]; then
    if [ ! -f "$ERNIE1_DATA/$f" ]; then
      echo "pretrain.sh: $f not found in $DATA_DIR nor in ERNIE1_DATA=$ERNIE1_DATA." >&2
      echo "  Put the ERNIE 1.0 demo data (demo_train_set.gz, demo_valid_set.gz, vocab.txt) in one of them," >&2
      echo "  or point ERNIE1_DATA at the directory that holds it." >&2
      exit 1
    fi
    cp "$ERNIE1_DATA/$f" "$DATA_DIR/$f"
  fi
done
# filelists: path<TAB>mask_word_prob (1.0: word-level masking on the seg_labels, the
# knowledge masking of ERNIE 1.0; 0.0 would mask characters)
printf '%s\t1.0\n' "$(cd "$DATA_DIR" && pwd)/demo_train_set.gz" > "$DATA_DIR/train_filelist"
printf '%s\t1.0\n' "$(cd "$DATA_DIR" && pwd)/demo_valid_set.gz" > "$DATA_DIR/valid_filelist"

RUN=(ernie/pretraining/ernie1.py
  --train_filelist "$DATA_DIR/train_filelist"
  --valid_filelist "$DATA_DIR/valid_filelist"
  --vocab_file "$DATA_DIR/vocab.txt"
  --ernie_config "$ERNIE_CONFIG"
  --max_seqlen "${MAX_SEQLEN:-512}"
  --run_config "{\"model_dir\": \"$MODEL_DIR\", \"max_steps\": $STEPS, \"save_steps\": 100, \"eval_steps\": 100,
                 \"eval_max_steps\": 20, \"log_steps\": 10, \"skip_steps\": 10, \"max_ckpt\": 3, \"seed\": 1}"
  --hparam "{\"batch_size\": ${BATCH_SIZE:-32}, \"learning_rate\": ${LR:-1e-4}, \"weight_decay\": 0.01,
             \"warmup_proportion\": 0.1, \"use_fp16\": false}"
  --save_dir "$MODEL_DIR/final")
if [ "$NPROC" -gt 1 ]; then
  python -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "$MODEL_DIR/launch_log" "${RUN[@]}"
else
  python "${RUN[@]}"
fi
