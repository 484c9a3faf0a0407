#!/bin/sh
# Online data distillation: the fine-tuned teacher is served by propeller's server and the
# student asks it for soft labels while it trains.
#   sh distill/script/distill_chnsenticorp_with_propeller_server.sh
#   PORT=8113 TASK_DATA_PATH=... MODEL_PATH=... sh distill/script/distill_chnsenticorp_with_propeller_server.sh
. "$(dirname "$0")/common.sh"
PORT=${PORT:-8113}

$PY -m propeller.tools.start_server -p "$PORT" -m "$TEACHER_DIR/best_inference/inference" > "$OUT/server.out" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT INT TERM
i=0
until grep -q '^ready' "$OUT/server.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 120 ] || ! kill -0 $SERVER 2>/dev/null; then echo "teacher server did not start" >&2; exit 1; fi
    sleep 1
done

$PY distill/distill_chnsentocorp_with_propeller_server.py --data_dir "$TASK_DATA_PATH" \
    --vocab_file "$OUT/vocab.bow.txt" --unsupervise_data_dir "$OUT/aug" --max_seqlen 128 \
    --teacher_host "tcp://localhost:$PORT" --teacher_vocab_file "$TEACHER_VOCAB" --teacher_max_seqlen 128 \
    --server_batch_size 64 --num_coroutine 10 \
    --run_config "{\"model_dir\": \"$OUT/student_${STUDENT}_online\", \"eval_steps\": 1000, \"save_steps\": 1000, \"seed\": 1}" \
    --hparam "$STUDENT_HPARAM"
