#!/usr/bin/env bash
# MSRA-NER named-entity recognition (chunk F1); ERNIE 2.0 large: the original large-model scripts' hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_large/run_msra_ner.sh
# (data in $TASK_DATA_PATH/msra_ner/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=msra_ner_large DATA_SUBDIR=msra_ner EXAMPLE=ner
: "${BATCH_SIZE:=16}" "${EPOCH:=6}" "${MAX_SEQLEN:=256}" "${LR:=1e-5}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
