#!/usr/bin/env bash
# NLPCC-DBQA answer ranking (MRR, F1); ERNIE 2.0 large: the original large-model scripts' hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_large/run_dbqa.sh
# (data in $TASK_DATA_PATH/nlpcc-dbqa/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=dbqa_large DATA_SUBDIR=nlpcc-dbqa EXAMPLE=ranker
: "${BATCH_SIZE:=8}" "${EPOCH:=3}" "${MAX_SEQLEN:=512}" "${LR:=1e-5}"
: "${EVAL_STEPS:=1000}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
