#!/bin/sh
# Offline data distillation (ERNIE Slim) on the demo sentiment set, from a fresh clone:
#   sh distill/script/distill_chnsenticorp.sh
#   TASK_DATA_PATH=task_data/chnsenticorp MODEL_PATH=ERNIE_1.0 sh distill/script/distill_chnsenticorp.sh
# (1) fine-tune the teacher, (2) label the augmented text with it (--do_predict on stdin),
# (3) train the student on gold + teacher-labelled data. Outputs under $OUT.
. "$(dirname "$0")/common.sh"

# 2. teacher labels: `label<TAB>probabilities` per line, pasted before the text
mkdir -p "$OUT/aug_labelled"
$PY example/finetune_classifier.py --do_predict --run_config "{\"model_dir\": \"$TEACHER_DIR\"}" \
    < "$OUT/aug/part.0" > "$OUT/aug.pred"
paste "$OUT/aug.pred" "$OUT/aug/part.0" | awk -F'\t' 'NF == 3' > "$OUT/aug_labelled/part.0"

# 3. the student
$PY distill/distill_chnsentocorp.py --data_dir "$TASK_DATA_PATH" --vocab_file "$OUT/vocab.bow.txt" \
    --unsupervise_data_dir "$OUT/aug_labelled" --max_seqlen 128 \
    --run_config "{\"model_dir\": \"$OUT/student_$STUDENT\", \"eval_steps\": 1000, \"save_steps\": 1000, \"seed\": 1}" \
    --hparam "$STUDENT_HPARAM"
echo "student: $OUT/student_$STUDENT/best_inference/inference (python -m propeller.tools.start_server -m ... -p PORT)"
