"""Propeller trainer in one process: accumulation, DataLoader workers, AMP path, non-finite
steps, warm start, exporters, checkpoints, hooks, k-fold and checkpoint averaging.

Every Learner trains the 1-layer model of _propeller_train_script for a few steps (CPU)."""
import glob
import json
import logging
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import _propeller_train_script as S
import propeller.paddle as propeller
from propeller.train import hooks as hooks_mod
from propeller.train import saver as saver_mod
from propeller.train import trainer as trainer_mod

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = S.make_examples()


def _rc(model_dir, **kw):
    base = dict(model_dir=str(model_dir), max_steps=6, save_steps=None, eval_steps=None, log_steps=None, seed=1)
    base.update(kw)
    return propeller.RunConfig(**base)


def _hp(**kw):
    base = dict(learning_rate=5e-3, warmup_steps=2, dropout=0.1)
    base.update(kw)
    return propeller.HParams(**base)


def _train(model_dir, rc=None, hp=None, batch_size=8, hooks=(), model_class=S.TinyModel, data=None, **learner_kw):
    learner = propeller.Learner(model_class, _rc(model_dir, **(rc or {})), _hp(**(hp or {})), **learner_kw)
    state = learner.train(data if data is not None else S.train_dataset(EXAMPLES, batch_size), list(hooks))
    return learner, state


def _assert_params(a, b, atol=0.0):
    assert sorted(a) == sorted(b)
    for k in a:
        if atol:
            np.testing.assert_allclose(a[k], b[k], atol=atol, rtol=0, err_msg=k)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


class _Snapshots(propeller.RunHook):
    """Parameters (and the state's loss) after every step; gsteps seen; hook call counts."""

    def __init__(self):
        self.params, self.losses, self.gsteps, self.calls = {}, {}, [], {"before": 0, "after": 0}
        self.model = None

    def before_train(self, state):
        self.calls["before"] += 1
        if self.model is not None:
            self.params[state.gstep] = S.params_of(self.model)

    def after_step(self, state):
        self.gsteps.append(state.gstep)
        self.losses[state.gstep] = state.loss
        if self.model is not None:
            self.params[state.gstep] = S.params_of(self.model)

    def after_train(self, state):
        self.calls["after"] += 1


def _learner_with_snapshots(model_dir, rc=None, hp=None, model_class=S.TinyModel, **kw):
    learner = propeller.Learner(model_class, _rc(model_dir, **(rc or {})), _hp(**(hp or {})), **kw)
    snap = _Snapshots()
    snap.model = learner.model
    return learner, snap


# ---------------------------------------------------------------------------- optimisation

def test_gradient_accumulation_matches_big_batch(tmp_path):
    big, _ = _train(tmp_path / "big", hp=dict(dropout=0.0), batch_size=8)
    acc, state = _train(tmp_path / "acc", hp=dict(dropout=0.0, gradient_accumulation_steps=2), batch_size=4)
    assert state.gstep == 6 and state.consumed == 12  # 2 micro-batches per step
    _assert_params(S.params_of(big.model), S.params_of(acc.model), atol=1e-5)
    # and it is not trivially so: one micro-batch of 4 per step ends elsewhere
    small, _ = _train(tmp_path / "small", hp=dict(dropout=0.0), batch_size=4)
    diff = max(np.abs(S.params_of(small.model)[k] - S.params_of(big.model)[k]).max() for k in S.params_of(big.model))
    assert diff > 1e-4


def test_dataloader_workers_and_resume_skip(tmp_path, monkeypatch):
    ref, _ = _train(tmp_path / "ref", rc=dict(max_steps=8))
    skips = []
    orig_skip = propeller.Dataset.skip
    monkeypatch.setattr(propeller.Dataset, "skip", lambda self, n: (skips.append(n), orig_skip(self, n))[1])
    loaders = []
    orig_loader = propeller.Dataset.to_paddle_dataloader
    monkeypatch.setattr(propeller.Dataset, "to_paddle_dataloader",
                        lambda self, **kw: (loaders.append(kw), orig_loader(self, **kw))[1])
    # interrupted after 3 steps, then resumed by a second Learner, both with 2 worker processes
    _, first = _train(tmp_path / "w", rc=dict(max_steps=8, run_steps=3, save_steps=3), hp=dict(num_workers=2))
    assert first.gstep == 3 and skips == []
    learner, state = _train(tmp_path / "w", rc=dict(max_steps=8, save_steps=3), num_workers=2)
    assert state.gstep == 8
    assert skips == [3]  # fast-forwarded inside the pipeline, before the DataLoader
    assert loaders == [{"num_workers": 2}, {"num_workers": 2}]
    _assert_params(S.params_of(ref.model), S.params_of(learner.model))


def test_num_workers_needs_a_dataset(tmp_path):
    with pytest.raises(ValueError, match="num_workers > 0 needs"):
        _train(tmp_path, hp=dict(num_workers=2), data=list(S.train_dataset(EXAMPLES, 8).take(6)))


# ---------------------------------------------------------------------------- AMP and non-finite steps

def test_amp_hparams_turn_on_autocast_and_scaler(tmp_path, monkeypatch):
    casts, scalers = [], []
    real_cast, real_scaler = paddle.amp.auto_cast, paddle.amp.GradScaler

    def cast(**kw):
        if kw.get("enable", True):  # to_static's compiled forward calls auto_cast(enable=False) itself
            casts.append(kw)
        return real_cast(**kw)

    class Scaler(real_scaler):
        def __init__(self, **kw):
            scalers.append(kw)
            super().__init__(**kw)

    monkeypatch.setattr(paddle.amp, "auto_cast", cast)
    monkeypatch.setattr(paddle.amp, "GradScaler", Scaler)
    fp32, _ = _train(tmp_path / "fp32")
    assert casts == [] and scalers == []
    fp16, state = _train(tmp_path / "fp16", hp=dict(use_fp16=True, init_loss_scaling=1024))
    assert len(casts) == 6 and all(c == dict(enable=True, dtype="float16", level="O1") for c in casts)
    assert scalers == [dict(enable=True, use_dynamic_loss_scaling=True, init_loss_scaling=1024.0,
                            incr_every_n_steps=100, decr_every_n_nan_or_inf=2, incr_ratio=2.0, decr_ratio=0.8)]
    assert isinstance(fp16.scaler, real_scaler)
    if not paddle.device.is_compiled_with_cuda():  # CPU: Paddle computes in fp32, scaler off (FEASIBILITY §2)
        _assert_params(S.params_of(fp32.model), S.params_of(fp16.model))
    casts.clear()
    bf16, _ = _train(tmp_path / "bf16", hp=dict(use_bf16=True))
    assert len(casts) == 6 and casts[0]["dtype"] == "bfloat16" and len(scalers) == 1 and bf16.scaler is None
    assert trainer_mod.AMP_DEFAULTS == dict(init_loss_scaling=102400.0, incr_every_n_steps=100,
                                            decr_every_n_nan_or_inf=2, incr_ratio=2.0, decr_ratio=0.8)


class PoisonModel(S.TinyModel):
    """Loss is +inf on the batch holding example POISON."""

    POISON = 20

    def forward(self, ids, index=None):
        self._poisoned = index is not None and self.POISON in index.numpy()
        return super().forward(ids, index)

    def loss(self, logits, labels):
        loss = super().loss(logits, labels)
        return loss * float("inf") if self._poisoned else loss


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("amp", [{}, {"use_fp16": True}])
def test_nonfinite_loss_skips_the_update(tmp_path, amp):
    # no shuffle: batch k holds examples 8k..8k+7, so step 3 (batch 2) holds example 20
    data = propeller.Dataset.from_list(EXAMPLES).repeat().padded_batch(8)
    learner, snap = _learner_with_snapshots(tmp_path, rc=dict(max_steps=5, log_steps=4, save_steps=5),
                                            hp=amp, model_class=PoisonModel)
    cap = _Capture()
    logging.getLogger("propeller").addHandler(cap)
    try:
        state = learner.train(data, [snap])
    finally:
        logging.getLogger("propeller").removeHandler(cap)
    assert state.nonfinite_skipped == 1 and not np.isfinite(snap.losses[3])
    _assert_params(snap.params[2], snap.params[3])  # the poisoned step changed nothing
    for a, b in ((1, 2), (3, 4)):  # while the others did
        assert any(not np.array_equal(snap.params[a][k], snap.params[b][k]) for k in snap.params[a])
    assert all(np.isfinite(v).all() for v in snap.params[5].values())
    assert any("non-finite loss at step 3" in l for l in cap.lines)
    assert any(l.startswith("step: 4,") and "non-finite skipped: 1" in l for l in cap.lines)
    with open(os.path.join(learner.saver.latest(), "meta.json")) as f:
        assert json.load(f)["nonfinite_skipped"] == 1
    from visualdl import LogReader
    reader = LogReader(file_path=glob.glob(str(tmp_path / "vdl" / "vdlrecords.*.log"))[0])
    assert [(r.id, r.value) for r in reader.get_data("scalar", "train/nonfinite_skipped")] == [(4, 1.0)]


# ---------------------------------------------------------------------------- warm start

def test_warm_start_loads_only_selected_params(tmp_path):
    src, _ = _train(tmp_path / "src", rc=dict(max_steps=2, save_steps=2))
    src_params = S.params_of(src.model)
    ws = propeller.WarmStartSetting(predicate_fn=lambda name: name.startswith("ernie."),
                                    from_dir=str(tmp_path / "src"))  # a model_dir: its newest checkpoint
    learner, snap = _learner_with_snapshots(tmp_path / "dst", rc=dict(max_steps=1, seed=2))
    learner.warm_start_setting = ws
    init = S.params_of(learner.model)
    learner.train(S.train_dataset(EXAMPLES, 8), [snap])
    loaded, not_loaded = learner.warm_start_result
    assert sorted(not_loaded) == ["fc.bias", "fc.weight"]
    assert loaded and all(n.startswith("ernie.") for n in loaded) and len(loaded) + 2 == len(src_params)
    at_start = snap.params[0]
    for name in src_params:
        expect = src_params[name] if name.startswith("ernie.") else init[name]
        np.testing.assert_array_equal(at_start[name], expect, err_msg=name)
    assert not np.array_equal(src_params["fc.weight"], init["fc.weight"])  # seeds differ: a real test

    # strict loading names what is missing; the predicate's exclusions are never errors
    other = S.TinyModel(_hp(), propeller.RunMode.TRAIN, None)
    state_file = os.path.join(src.saver.latest(), "model_state.pdparams")
    state = paddle.load(state_file)
    del state["fc.bias"]
    paddle.save(state, str(tmp_path / "partial.pdparams"))
    with pytest.raises(ValueError, match="missing fc.bias"):
        saver_mod.load_model_state(other, str(tmp_path / "partial.pdparams"), strict=True)
    loaded, skipped = saver_mod.load_model_state(other, str(tmp_path / "partial.pdparams"),
                                                 predicate=lambda n: n != "fc.bias", strict=True)
    assert skipped == ["fc.bias"] and "fc.weight" in loaded


# ---------------------------------------------------------------------------- exporters

def test_best_exporters(tmp_path):
    def highest_loss(old, new):  # training lowers the loss, so the best is an early step, not the last
        return old is None or new["loss"] > old["loss"]

    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="export asset 'vocab.txt'"):
        propeller.BestExporter(str(tmp_path / "best"), assets={"vocab.txt": str(tmp_path / "missing.txt")})
    exporters = [propeller.BestExporter(str(tmp_path / "best"), cmp_fn=highest_loss,
                                        assets={"vocab.txt": str(tmp_path / "vocab.txt"), "config.json": {"hidden": 4}}),
                 propeller.BestInferenceModelExporter(str(tmp_path / "infer"), cmp_fn=highest_loss)]
    evals = {}

    class Record(propeller.RunHook):
        def after_step(self, state):
            if state.gstep % 2 == 0:
                evals[state.gstep] = dict(state.last_eval["dev"])

    learner, snap = _learner_with_snapshots(tmp_path / "run", rc=dict(max_steps=8, eval_steps=2))
    learner.train(S.train_dataset(EXAMPLES, 8), [snap, Record()], {"dev": S.eval_dataset(EXAMPLES[:16])}, exporters)
    best_step = max(evals, key=lambda s: evals[s]["loss"])
    assert best_step != 8 and len(set(round(e["loss"], 6) for e in evals.values())) == len(evals)

    with open(tmp_path / "best" / "eval_result.json") as f:
        exported = json.load(f)
    assert exported["step"] == best_step
    assert (tmp_path / "best" / "vocab.txt").read_text(encoding="utf-8") == "[PAD]\n[UNK]\n"
    assert json.loads((tmp_path / "best" / "config.json").read_text()) == {"hidden": 4}
    for key in ("loss", "acc", "data_num"):
        assert exported[key] == pytest.approx(evals[best_step][key], abs=1e-9)
    _assert_params({k: v.numpy() for k, v in paddle.load(str(tmp_path / "best" / "model_state.pdparams")).items()},
                   snap.params[best_step])

    inf = tmp_path / "infer" / "inference"
    assert sorted(os.listdir(inf)) == ["model.json", "model.pdiparams", "model_meta.json"]
    with open(tmp_path / "infer" / "eval_result.json") as f:
        assert json.load(f)["step"] == best_step
    config = paddle.inference.Config(str(inf / "model.json"), str(inf / "model.pdiparams"))
    config.disable_glog_info()
    predictor = paddle.inference.create_predictor(config)
    ids = S.eval_dataset(EXAMPLES[:16]).__iter__().__next__()[0]
    h = predictor.get_input_handle("ids")
    h.reshape(ids.shape)
    h.copy_from_cpu(ids)
    predictor.run()
    got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    learner.model.set_state_dict({k: paddle.to_tensor(v) for k, v in snap.params[best_step].items()})
    learner.model.eval()
    want = learner.model(paddle.to_tensor(ids)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- checkpoints

def test_checkpoints_pruned_listed_and_atomic(tmp_path, monkeypatch):
    learner, state = _train(tmp_path, rc=dict(max_steps=8, save_steps=2, max_ckpt=2))
    with open(tmp_path / "ckpt_info") as f:
        assert f.read() == "model_6\nmodel_8\n"
    assert sorted(d for d in os.listdir(tmp_path) if d.startswith("model_")) == ["model_6", "model_8"]
    assert sorted(os.listdir(tmp_path / "model_8")) == ["meta.json", "model_state.pdparams", "optimizer.pdopt"]
    with open(tmp_path / "model_8" / "meta.json") as f:
        meta = json.load(f)
    assert meta["step"] == 8 and meta["consumed"] == 8 and meta["nonfinite_skipped"] == 0 and meta["time"] > 0
    opt_state = paddle.load(str(tmp_path / "model_8" / "optimizer.pdopt"))
    assert opt_state["LR_Scheduler"]["last_epoch"] == 8
    before = {n: open(tmp_path / n / "model_state.pdparams", "rb").read() for n in ("model_6", "model_8")}

    real_save = saver_mod.paddle.save

    def failing_save(obj, path, *a, **k):
        if str(path).endswith("optimizer.pdopt"):
            raise OSError("disk full")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(saver_mod.paddle, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        learner.saver.save(10, learner.model, learner.optimizer, meta={})
    with open(tmp_path / "ckpt_info") as f:
        assert f.read() == "model_6\nmodel_8\n"
    assert sorted(os.listdir(tmp_path)) == ["ckpt_info", "model_6", "model_8", "vdl"]  # no half-written dir
    for n, data in before.items():
        assert open(tmp_path / n / "model_state.pdparams", "rb").read() == data
    assert learner.saver.latest() == str(tmp_path / "model_8")


def test_second_learner_resumes_in_the_same_process(tmp_path):
    # Paddle names optimizer state after globally numbered parameters (FEASIBILITY §6); each
    # Learner's own name space makes a restore into a second Learner work anyway.
    ref, _ = _train(tmp_path / "ref", rc=dict(max_steps=6))
    _train(tmp_path / "run", rc=dict(max_steps=6, run_steps=4, save_steps=4))
    learner, state = _train(tmp_path / "run", rc=dict(max_steps=6))
    assert state.gstep == 6 and state.step == 2
    _assert_params(S.params_of(ref.model), S.params_of(learner.model))


# ---------------------------------------------------------------------------- hooks

def test_hooks_see_every_step_log_to_visualdl_and_stop(tmp_path):
    from visualdl import LogReader
    learner, snap = _learner_with_snapshots(tmp_path, rc=dict(max_steps=10, run_steps=7, log_steps=3, save_steps=7))
    state = learner.train(S.train_dataset(EXAMPLES, 8), [snap])
    assert snap.gsteps == list(range(1, 8)) and snap.calls == {"before": 1, "after": 1}
    assert state.gstep == 7 and state.step == 7  # run_steps
    files = glob.glob(str(tmp_path / "vdl" / "vdlrecords.*.log"))
    assert len(files) == 1
    reader = LogReader(file_path=files[0])
    loss = reader.get_data("scalar", "train/loss")
    assert [r.id for r in loss] == [3, 6]
    np.testing.assert_allclose([r.value for r in loss], [snap.losses[3], snap.losses[6]], rtol=1e-6)
    lr = reader.get_data("scalar", "train/lr")
    assert [r.id for r in lr] == [3, 6] and all(r.value > 0 for r in lr)
    assert [r.id for r in reader.get_data("scalar", "train/speed")] == [3, 6]
    # a second call resumes (same Learner) and stops at max_steps before run_steps
    snap.gsteps.clear()
    state = learner.train(S.train_dataset(EXAMPLES, 8), [snap])
    assert snap.gsteps == [8, 9, 10] and state.gstep == 10 and state.step == 3

    stop = hooks_mod.StopAtStepHook(max_steps=5, run_steps=2)
    st = hooks_mod.RunState()
    st.gstep, st.step = 4, 1
    assert not stop.should_stop(st)
    st.step = 2
    assert stop.should_stop(st)
    st.gstep, st.step = 5, 0
    assert stop.should_stop(st)


# ---------------------------------------------------------------------------- tools

def test_average_checkpoints(tmp_path):
    from propeller.tools import average_checkpoints as avg
    vals = [np.array([[1, 2], [3, 4]], "float32"), np.array([[2, 4], [6, 9]], "float32"),
            np.array([[6, 0], [0, 5]], "float32")]
    for i, v in enumerate(vals):
        os.makedirs(tmp_path / "run" / f"model_{i + 1}")
        paddle.save({"w": paddle.to_tensor(v), "b": paddle.to_tensor(v[0] * 0.5),
                     "pos": paddle.to_tensor(np.arange(3, dtype="int64"))},
                    str(tmp_path / "run" / f"model_{i + 1}" / "model_state.pdparams"))
        with open(tmp_path / "run" / f"model_{i + 1}" / "meta.json", "w") as f:
            json.dump({"step": i + 1}, f)
    with open(tmp_path / "run" / "ckpt_info", "w") as f:
        f.write("model_1\nmodel_2\nmodel_3\n")
    out = avg.average_checkpoints([str(tmp_path / "run" / f"model_{i}") for i in (1, 2, 3)], str(tmp_path / "avg"))
    got = paddle.load(out)
    np.testing.assert_array_equal(got["w"].numpy(), np.array([[3, 2], [3, 6]], "float32"))
    np.testing.assert_array_equal(got["b"].numpy(), np.array([1.5, 1], "float32"))
    np.testing.assert_array_equal(got["pos"].numpy(), np.arange(3))
    assert got["w"].dtype == paddle.float32 and got["pos"].dtype == paddle.int64
    # CLI: the last 2 of a model_dir, into a .pdparams file
    r = subprocess.run([sys.executable, "-m", "propeller.tools.average_checkpoints", "--last", "2", "--model_dir",
                        str(tmp_path / "run"), "--output", str(tmp_path / "last2.pdparams")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(paddle.load(str(tmp_path / "last2.pdparams"))["w"].numpy(),
                                  np.array([[4, 2], [3, 7]], "float32"))
    # mismatched parameters are an error naming them
    paddle.save({"w": paddle.to_tensor(vals[0])}, str(tmp_path / "odd.pdparams"))
    with pytest.raises(ValueError, match=r"missing \['b', 'pos'\]"):
        avg.average_state_dicts([str(tmp_path / "run" / "model_1"), str(tmp_path / "odd.pdparams")])


def test_kfold_api(tmp_path):
    from propeller.tools.kfold import kfold
    rc = _rc(tmp_path, max_steps=3)
    res = kfold(S.TinyModel, _hp(batch_size=8), rc, EXAMPLES, k=3, seed=5)
    fold_of = np.array(res["fold_of"])
    assert sorted(np.bincount(fold_of).tolist()) == [16, 16, 16]  # disjoint, covering, balanced
    for i, r in enumerate(res["folds"]):
        assert r["fold"] == i and r["eval_size"] == 16 and r["train_size"] == 32 and r["data_num"] == 16
    for key in ("loss", "acc"):
        vals = [r[key] for r in res["folds"]]
        assert res["mean"][key] == pytest.approx(np.mean(vals)) and res["std"][key] == pytest.approx(np.std(vals))
    oof = np.load(res["oof_file"])
    assert oof["predictions"].shape == (48, 2) and oof["index"].tolist() == list(range(48))
    assert oof["fold"].tolist() == res["fold_of"]
    with open(tmp_path / "kfold_summary.json") as f:
        assert json.load(f)["mean"]["acc"] == pytest.approx(res["mean"]["acc"])
    assert all(os.path.exists(tmp_path / f"fold_{i}" / "ckpt_info") for i in range(3))
    # held-out predictions are the fold model's own: re-predict one fold from its checkpoint
    learner = propeller.Learner(S.TinyModel, _rc(tmp_path / "fold_1", max_steps=3), _hp())
    held = [EXAMPLES[j] for j in np.flatnonzero(fold_of == 1)]
    again = list(learner.predict(propeller.Dataset.from_list([e[:-1] for e in held]).padded_batch(8), ckpt=-1))
    np.testing.assert_allclose(np.stack(again), oof["predictions"][fold_of == 1], atol=1e-6)


KFOLD_USER_SCRIPT = '''
import argparse, json
ap = argparse.ArgumentParser()
for a in ("--train", "--dev", "--result", "--pred", "--model_dir"):
    ap.add_argument(a)
a = ap.parse_args()
train = open(a.train).read().splitlines()[1:]
dev = open(a.dev).read().splitlines()[1:]
assert not set(train) & set(dev)
with open(a.pred, "w") as f:
    f.writelines(line.split("\\t")[0].upper() + "\\n" for line in dev)
print("training on", len(train))
print(json.dumps({"n_dev": len(dev), "score": len(dev) / 10.0}))
'''


def test_kfold_cli(tmp_path):
    lines = [f"text{i}\t{i % 2}" for i in range(10)]
    data = tmp_path / "data.tsv"
    data.write_text("text\tlabel\n" + "".join(l + "\n" for l in lines))
    script = tmp_path / "user.py"
    script.write_text(KFOLD_USER_SCRIPT)
    cmd = [sys.executable, "-m", "propeller.tools.kfold", "--k", "3", "--data", str(data), "--header",
           "--work_dir", str(tmp_path / "w"), "--stratify_column", "-1", "--",
           str(script), "--train", "{train_file}", "--dev", "{dev_file}", "--pred", "{pred_file}",
           "--model_dir", "{model_dir}"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "[fold 0] training on" in r.stdout
    devs = [open(tmp_path / "w" / f"fold_{i}" / "data" / "dev" / "part-0").read().splitlines() for i in range(3)]
    trains = [open(tmp_path / "w" / f"fold_{i}" / "data" / "train" / "part-0").read().splitlines() for i in range(3)]
    assert all(d[0] == "text\tlabel" and t[0] == "text\tlabel" for d, t in zip(devs, trains))
    held = [set(d[1:]) for d in devs]
    assert sorted(len(h) for h in held) == [3, 3, 4] and set.union(*held) == set(lines)
    assert all(not (held[i] & held[j]) for i in range(3) for j in range(i + 1, 3))
    assert all(set(t[1:]) == set(lines) - held[i] for i, t in enumerate(trains))
    assert all(sum(l.endswith("\t0") for l in h) in (1, 2) for h in held)  # stratified: 5 zeros over 3 folds
    with open(tmp_path / "w" / "kfold_summary.json") as f:
        summary = json.load(f)
    scores = [len(h) / 10.0 for h in held]
    assert summary["mean"]["score"] == pytest.approx(np.mean(scores))
    assert summary["std"]["score"] == pytest.approx(np.std(scores))
    oof = (tmp_path / "w" / "oof_predictions.tsv").read_text().splitlines()
    assert len(oof) == 10
    for j, line in enumerate(oof):
        idx, fold, pred = line.split("\t")
        assert int(idx) == j and pred == f"TEXT{j}" and lines[j] in held[int(fold)]
    # a second run finds every fold done
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.count("exists, skipped") == 3


# ---------------------------------------------------------------------------- rank shares (no launcher)

def _feed_all(stream, world, mode):
    """Each rank's batches from _RankFeed over the same stream, and the consumed counts."""
    out, consumed = [], []
    for rank in range(world):
        feed = trainer_mod._RankFeed(iter(stream), world, rank, mode)
        state, got = hooks_mod.RunState(), []
        while (b := feed.next(state)) is not None:
            got.append(b)
        out.append(got)
        consumed.append(state.consumed)
    return out, consumed, feed.mode


def test_rank_feed_modes():
    rows = [(np.arange(6) + 10 * i, np.arange(6) % 2) for i in range(3)]  # 3 batches of 6 rows
    (r0, r1), consumed, mode = _feed_all(rows, 2, "auto")
    assert mode == "rows" and consumed == [3, 3]
    for full, a, b in zip(rows, r0, r1):
        assert len(a[0]) == len(b[0]) == 3 and sorted(np.concatenate([a[0], b[0]])) == sorted(full[0])
        np.testing.assert_array_equal(a[1], full[1][0::2])
    # flat fields (ERNIE masked positions): whole batches per rank; an incomplete last group is dropped
    flat = [(np.zeros((4, 5)), np.arange(7) + i, np.zeros(7)) for i in range(5)]
    (r0, r1), consumed, mode = _feed_all(flat, 2, "auto")
    assert mode == "batches" and consumed == [4, 4]
    assert [b[1][0] for b in r0] == [0, 2] and [b[1][0] for b in r1] == [1, 3]
    with pytest.raises(ValueError, match=r"first dimensions \[4, 7\]"):
        _feed_all(flat, 2, "rows")
    (r0,), consumed, _ = _feed_all(flat, 1, "rows")  # one process: untouched
    assert len(r0) == 5 and consumed == [5]
    (r0, r1), _, _ = _feed_all(flat, 2, "none")
    assert len(r0) == len(r1) == 5
    tiny = [(np.arange(1), np.arange(1))] + rows[:1]  # a 1-row batch cannot be split: all ranks skip it
    (r0, r1), consumed, _ = _feed_all(tiny, 2, "rows")
    assert len(r0) == len(r1) == 1 and consumed == [2, 2]
    with pytest.raises(ValueError, match="split_batches must be one of"):
        propeller.Learner(S.TinyModel, _rc("/nonexistent"), _hp(split_batches="halves"))
