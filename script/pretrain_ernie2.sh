#!/usr/bin/env bash
# ERNIE 2.0 continual multi-task pre-training on the demo corpora, in one command:
#
#   bash script/pretrain_ernie2.sh zh            # KM, SR, SD, DR, IR  (config/pretrain/zh_ernie2_demo.json)
#   bash script/pretrain_ernie2.sh en            # KM, CP, TDR, SR, DR (config/pretrain/en_ernie2_demo.json)
#   bash script/pretrain_ernie2.sh my_schedule.json --budget_scale 0.1 --save_dir output/my_model
#
# Extra arguments go to `python -m ernie.pretraining.pretrain` (--run_config, --hparam,
# --budget_scale, --init_checkpoint, --save_dir). NPROC=2 runs it under
# `python -m paddle.distributed.launch --nproc_per_node 2`. The demo corpora are built first
# if data/demo is missing; shards are built on the first run (output/shards/). Rerunning the
# same command resumes from the newest checkpoint of the run's model_dir.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set -eo pipefail
cd "$ERNIE_ROOT"

WHICH="${1:-zh}"
shift || true
case "$WHICH" in
  zh) SCHEDULE=config/pretrain/zh_ernie2_demo.json ;;
  en) SCHEDULE=config/pretrain/en_ernie2_demo.json ;;
  *) SCHEDULE="$WHICH" ;;
esac
if [ ! -f "$SCHEDULE" ]; then
  echo "pretrain_ernie2.sh: no schedule config $SCHEDULE (give zh, en or a JSON file)" >&2
  exit 1
fi
if [ "$WHICH" = zh ] || [ "$WHICH" = en ]; then
  if [ ! -f data/demo/vocab.txt ] || [ ! -d "data/demo/${WHICH}_corpus/train" ]; then
    echo "== building the demo corpora in data/demo"
    python -m ernie.data.demo --out data/demo
    [ -f data/demo/vocab.txt ] || python -m ernie.tokenizing build_vocab --corpus data/demo/zh_corpus_raw.txt data/demo/zh_reviews_raw.txt --out data/demo/vocab.txt
  fi
fi
NPROC="${NPROC:-1}"
if [ "$NPROC" -gt 1 ]; then
  python -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "${LAUNCH_LOG:-log/pretrain_ernie2}" \
    ernie/pretraining/pretrain.py --schedule "$SCHEDULE" "$@"
else
  python -m ernie.pretraining.pretrain --schedule "$SCHEDULE" "$@"
fi
