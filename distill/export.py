"""Export a distilled student (a distillation run's ``best/``: model_state.pdparams +
distill.json + vocab) for paddle.inference; ``python -m inference.export --model_dir
output/distill/best --out DIR`` calls this when it finds distill.json.

The exported model takes ``src_ids`` [B, S] (int64, 0 = padding) and returns logits; the
student's vocabulary (and SentencePiece files) are copied beside it."""
import json
import os
import shutil

__all__ = ["is_student_dir", "export_student"]

META_FILE = "distill.json"


def is_student_dir(model_dir):
    return os.path.isfile(os.path.join(model_dir, META_FILE))


def export_student(model_dir, out_dir):
    import propeller.paddle as propeller
    from distill.model import DistillModel
    from propeller.inference.export import export_inference_model
    from propeller.train import load_model_state
    with open(os.path.join(model_dir, META_FILE), encoding="utf-8") as f:
        meta = json.load(f)
    model = DistillModel(propeller.HParams(**meta["hparams"]))
    # only the student: the layer-distillation projections in the state are training-time parts
    load_model_state(model, model_dir, predicate=lambda n: n.startswith("student."), strict=True)
    export_inference_model(model, out_dir, meta={"model": f"distilled {meta['student']} student",
                                                 "distill": meta})
    for name in ("vocab.txt", META_FILE, meta.get("sentence_piece_model"), meta.get("word_dict")):
        if name and os.path.isfile(os.path.join(model_dir, name)):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(out_dir, name))
    return out_dir
