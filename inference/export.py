"""Export a model for ``paddle.inference``: ``DIR/model.json`` + ``DIR/model.pdiparams``
(``paddle.jit.save``) and ``DIR/model_meta.json`` naming the inputs and outputs.

The layer says what it takes through ``inference_spec()`` (a list of ``paddle.static.InputSpec``);
``input_spec`` overrides it. The layer is exported in eval mode (no dropout)."""
import json
import os

import paddle

PREFIX = "model"
META_FILE = "model_meta.json"


def export_inference_model(layer, out_dir, input_spec=None, output_names=None):
    spec = input_spec if input_spec is not None else layer.inference_spec()
    if not spec:
        raise ValueError(f"{type(layer).__name__} has no inference_spec(); pass input_spec=[InputSpec(...), ...]")
    was_training = layer.training
    layer.eval()
    os.makedirs(out_dir, exist_ok=True)
    try:
        paddle.jit.save(layer, os.path.join(out_dir, PREFIX), input_spec=list(spec))
    finally:
        if was_training:
            layer.train()
    meta = {
        "prefix": PREFIX,
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype).replace("paddle.", "")}
                   for s in spec],
        "outputs": list(output_names) if output_names else None,
    }
    with open(os.path.join(out_dir, META_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return out_dir
