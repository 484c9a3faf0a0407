"""Multi-task model and continual schedule in training: stage switches, task ids reaching the
task embedding, every task learning, kill -9 and resume mid-stage, and a 2-process launch."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

import propeller.paddle as propeller
from ernie.pretraining.multitask import MultiTaskPretrainModel, build_tasks
from ernie.pretraining.pipeline import MultiTaskStream, collate
from ernie.pretraining.pretrain import StageHook
from ernie.pretraining.preprocess import build_shards
from ernie.pretraining.schedule import Schedule
from test_pretrain_tasks import EN_DOCS, ZH_DOCS, ctx_for, encode_docs, make_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=128, type_vocab_size=2, task_type_vocab_size=16, use_task_id=True, hidden_act="gelu")
ALL_TASKS = {"km": {}, "cp": {}, "tdr": {}, "sr": {"max_segments": 3}, "sd": {}, "dr": {"lang": "zh"}, "ir": {},
             "nsp": {}}


def _docs(n_copies=4):
    """Hand-made documents, varied by a number so that copies differ."""
    out = []
    for k in range(n_copies):
        for d in ZH_DOCS + EN_DOCS:
            out.append([s.replace("。", f"{k} 。") if k % 2 else s for s in d])
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pt")
    tok = make_tokenizer(tmp, docs=_docs(), extra=["0 1 2 3"])
    corpus = encode_docs(tok, _docs())
    return tmp, tok, corpus


def _hparams(tok, spec, dropout=0.1):
    cfg = dict(TINY, vocab_size=len(tok.vocab), hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return propeller.HParams(ernie_config=cfg, tasks=spec, task_order=list(spec), learning_rate=3e-3,
                             warmup_proportion=0.0, weight_decay=0.0)


@pytest.mark.parametrize("mix", ["task_per_batch", "mixed"])
def test_three_stages_switch_and_task_ids_reach_the_embedding(data, mix):
    tmp, tok, corpus = data
    spec = {"km": {}, "sr": {}, "sd": {}}
    stages = [{"budgets": {"km": 4}}, {"budgets": {"km": 2, "sr": 3}}, {"budgets": {"km": 1, "sr": 1, "sd": 3}}]
    sched = Schedule(stages, list(spec), batch_size=4, mix=mix, seed=2)
    stream = MultiTaskStream(build_tasks(spec), sched, corpus, ctx_for(tok, corpus), seed=2)
    learner = propeller.Learner(MultiTaskPretrainModel, {"model_dir": str(tmp / f"run3{mix}"), "max_steps": sched.total,
                                                         "seed": 2, "log_steps": 100, "save_steps": 100},
                                _hparams(tok, spec), split_batches="none")
    seen = []
    emb = learner.model.ernie.embeddings.task_type_embeddings
    emb.register_forward_pre_hook(lambda layer, inputs: seen.append(inputs[0].numpy()[:, 0].tolist()))
    stage_hook = StageHook(sched)
    state = learner.train(stream, train_hooks=[stage_hook])
    assert state.gstep == sched.total == 14
    assert stage_hook.switches == [(0, 0), (4, 1), (9, 2)]
    task_id = {0: 0, 1: 3, 2: 4}  # km, sr, sd default task ids
    # each example's row carries its own task's id, in the schedule's order
    assert seen == [[task_id[int(t)] for t in sched.tasks_at(p)] for p in range(sched.total)]
    if mix == "mixed":
        assert any(len(set(row)) > 1 for row in seen)
    assert set(learner.model.step_scalars) >= {"stage", "km_loss", "sr_loss", "sd_loss", "km_acc", "km_ppl", "sd_acc"}
    assert learner.model.step_scalars["stage"] == 2


def _examples(task, corpus, ctx, n, seed=0):
    """``n`` examples of distinct inputs (the corpus holds copies of its documents, so that a
    pair could otherwise come twice with different labels, e.g. SD's "other document")."""
    rng = np.random.RandomState(seed)
    task.setup(ctx)
    got, seen = [], set()
    for _ in range(20):  # passes over the documents: each pass draws new examples
        for i in range(len(corpus)):
            ex = task.build(corpus[i], rng, ctx)
            if ex is not None and ex.token_ids.tobytes() not in seen:
                seen.add(ex.token_ids.tobytes())
                got.append(ex)
            if len(got) == n:
                return got
    assert len(got) >= 3, f"{task.name}: only {len(got)} distinct examples"
    return got  # DR: the hand-made documents hold three marker sentences


@pytest.mark.parametrize("name", list(ALL_TASKS))
def test_each_task_overfits_a_handful_of_its_examples(data, name):
    """A tiny model memorises up to 8 examples of one task: loss far below the untrained model's
    ln(classes) and every target right. A head that gathers the wrong rows (several examples'
    targets read from one row), a loss that pairs logits with the wrong labels, or labels that are
    not a function of the input cannot do that."""
    tmp, tok, corpus = data
    paddle.seed(0)
    spec = {name: ALL_TASKS[name]}
    model = MultiTaskPretrainModel(_hparams(tok, spec, dropout=0.0))
    ctx = ctx_for(tok, corpus)
    exs = _examples(model.tasks[0], corpus, ctx, 8)
    batch = collate(exs, {t.name: (k, t) for k, t in enumerate(model.tasks)}, ctx)
    to_t = lambda x: tuple(to_t(y) for y in x) if isinstance(x, tuple) else paddle.to_tensor(x)  # noqa: E731
    feats, labels = [to_t(x) for x in batch[:-1]], to_t(batch[-1])
    opt = paddle.optimizer.Adam(learning_rate=5e-3, parameters=model.parameters())
    model.train()
    for step in range(150):
        loss = model.loss(model(*feats), labels)
        loss.backward()
        opt.step()
        opt.clear_grad()
    model.eval()
    with paddle.no_grad():
        present, logits, _, _ = model(*feats)
        final = float(model.loss((present, logits, None, 0), labels))
    classes = model.tasks[0].num_classes or model.config.vocab_size
    pred = logits[0].argmax(-1).numpy()
    assert final < 0.05 * np.log(classes), f"{name}: loss {final:.3f} vs ln({classes}) = {np.log(classes):.3f}"
    assert (pred == batch[-1][0]).all(), name


# ----------------------------------------------------------------------------- subprocess runs

def _write_run(tmp, tok_dir, name, stages, save_steps, extra=None):
    corpus_dir = tmp / "corpus"
    if not corpus_dir.exists():
        corpus_dir.mkdir()
        (corpus_dir / "docs.txt").write_text("\n\n".join("\n".join(d) for d in _docs(10)) + "\n", encoding="utf-8")
        build_shards([str(corpus_dir)], str(tok_dir / "vocab.txt"), str(tmp / "shards"), progress=False)
    cfg = {"seed": 3, "batch_size": 4, "max_seqlen": 48, "mix": "task_per_batch",
           "model": {"ernie_config": dict(TINY, vocab_size=1), "overrides": {"vocab_size": "from_data"}},
           "data": {"shards": str(tmp / "shards"), "vocab": str(tok_dir / "vocab.txt")},
           "tasks": {"km": {}, "sr": {}, "sd": {}, "ir": {}},
           "stages": stages,
           "run_config": {"model_dir": str(tmp / name), "log_steps": 1000, "save_steps": save_steps, "max_ckpt": 20},
           "hparams": {"learning_rate": 2e-3, "warmup_proportion": 0.1}}
    cfg.update(extra or {})
    cfg = {k: v for k, v in cfg.items() if v is not None}  # extra={"key": None} drops a key
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), GLOG_minloglevel="2")
    env.pop("PADDLE_TRAINER_ID", None)
    env.pop("PADDLE_TRAINERS_NUM", None)
    return env


def _pretrain(cfg_path, **kw):
    return subprocess.Popen([sys.executable, "-m", "ernie.pretraining.pretrain", "--schedule", str(cfg_path)],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _records(model_dir):
    with open(os.path.join(model_dir, "task_losses.jsonl"), encoding="utf-8") as f:
        return [json.loads(l) for l in f]


def test_kill_and_resume_mid_stage_matches_uninterrupted(data):
    tmp, tok, _ = data
    # stage boundaries at 50 and 100; checkpoints every 15 steps are never on one
    stages = [{"budgets": {"km": 50}}, {"budgets": {"km": 20, "sr": 30}}, {"budgets": {"km": 10, "sd": 20, "ir": 20}}]
    whole = _write_run(tmp, tmp, "whole", stages, 15)
    # cursors logged every 4 batches (the content does not depend on it): the resume restores them
    killed = _write_run(tmp, tmp, "killed", stages, 15, extra={"cursor_every": 4})
    ref = _pretrain(whole)
    victim = _pretrain(killed)
    info = tmp / "killed" / "ckpt_info"
    t0 = time.time()
    while time.time() - t0 < 120 and victim.poll() is None:
        if info.exists() and info.read_text().split():
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed:\n" + victim.stdout.read()[-3000:]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    ckpts = info.read_text().split()
    killed_at = int(ckpts[-1].split("_")[1])
    assert killed_at < 150 and killed_at % 50, killed_at
    resumed = _pretrain(killed)
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out[-3000:]
    assert f"resumed from {tmp / 'killed' / ckpts[-1]} (step {killed_at})" in out
    # the stream sought its task cursors from the killed run's log instead of replaying every batch
    m = re.search(r"stream from position (\d+) \(producer 0 of 1\): task cursors of position (\d+) restored "
                  r"from the cursor log, (\d+) batches replayed", out)
    assert m, out[-3000:]
    assert int(m.group(1)) == killed_at and int(m.group(2)) >= killed_at - 3 and int(m.group(3)) < 4
    ref_out, _ = ref.communicate(timeout=180)
    assert ref.returncode == 0, ref_out[-3000:]
    # the same schedule positions, the same losses, the same final parameters
    a, b = _records(tmp / "whole"), _records(tmp / "killed")
    assert [(r["step"], r["task"], r["stage"]) for r in a] == [(r["step"], r["task"], r["stage"]) for r in b]
    assert np.allclose([r["loss"] for r in a], [r["loss"] for r in b], rtol=1e-5, atol=1e-6)
    pa = paddle.load(str(tmp / "whole" / "model_150" / "model_state.pdparams"))
    pb = paddle.load(str(tmp / "killed" / "model_150" / "model_state.pdparams"))
    assert set(pa) == set(pb)
    diff = max(float(np.abs(pa[k].numpy() - pb[k].numpy()).max()) for k in pa)
    assert diff < 1e-6, diff
    assert os.path.exists(tmp / "killed" / "task_losses.png")


def test_two_process_launch(data):
    """Two processes share a global batch of 8 (4 each) and pre-train without dropout; the saved
    model keeps the config's dropout for fine-tuning."""
    tmp, tok, _ = data
    stages = [{"budgets": {"km": 2}}, {"budgets": {"km": 1, "sr": 2}}, {"budgets": {"sd": 1, "ir": 2}}]
    model = {"ernie_config": dict(TINY, vocab_size=1, hidden_dropout_prob=0.1), "overrides": {"vocab_size": "from_data"},
             "pretraining_overrides": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}
    cfg = _write_run(tmp, tmp, "launch", stages, 100, extra={"batch_size": None, "global_batch_size": 8, "model": model})
    log_dir = tmp / "launch_log"
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                        str(log_dir), os.path.join(ROOT, "ernie", "pretraining", "pretrain.py"), "--schedule", str(cfg),
                        "--save_dir", str(tmp / "launch_saved")],
                       cwd=str(tmp), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    logs = {f: (log_dir / f).read_text(errors="replace") for f in os.listdir(log_dir) if f.startswith("workerlog")}
    assert p.returncode == 0, p.stdout[-2000:] + "\n".join(v[-2000:] for v in logs.values())
    assert sorted(logs) == ["workerlog.0", "workerlog.1"]
    assert not any("Traceback" in v for v in logs.values())
    assert "stage 3/3" in logs["workerlog.0"]
    assert "batch 4 per process" in logs["workerlog.0"]
    assert (tmp / "launch" / "model_8" / "model_state.pdparams").exists()
    with open(tmp / "launch_saved" / "config.json", encoding="utf-8") as f:
        assert json.load(f)["hidden_dropout_prob"] == 0.1
    print(f"2-process launch: {time.time() - t0:.1f} s")


def test_warm_start_from_an_ernie1_checkpoint(data, tmp_path):
    from ernie.checkpoint import save_pretrained
    from ernie.modeling import ErnieConfig, ErnieForPretraining
    tmp, tok, _ = data
    hp = _hparams(tok, {"km": {}, "sd": {}})
    ernie1 = ErnieForPretraining(ErnieConfig(**dict(hp.ernie_config, use_task_id=True)))
    save_pretrained(ernie1, tmp_path / "e1")
    model = MultiTaskPretrainModel(hp)
    model.warm_start(str(tmp_path / "e1"))
    src = ernie1.state_dict()
    got = model.state_dict()
    assert np.array_equal(got["ernie.encoder.layers.0.linear1.weight"].numpy(),
                          src["ernie.encoder.layers.0.linear1.weight"].numpy())
    # ERNIE 1.0's masked-LM head becomes the knowledge-masking head
    assert np.array_equal(got["heads.0.mlm.transform.weight"].numpy(), src["cls.predictions.transform.weight"].numpy())


def test_output_bias_starts_the_masked_lm_at_the_unigram_distribution(data):
    tmp, tok, corpus = data
    paddle.seed(0)
    model = MultiTaskPretrainModel(_hparams(tok, {"km": {}}, dropout=0.0))
    counts = np.zeros(len(tok.vocab))
    for i in range(len(corpus)):
        for s in corpus[i]:
            counts += np.bincount(np.asarray(s.ids, np.int64), minlength=len(tok.vocab))
    exs = _examples(model.tasks[0], corpus, ctx_for(tok, corpus), 8)
    batch = collate(exs, {"km": (0, model.tasks[0])}, ctx_for(tok, corpus))
    to_t = lambda x: tuple(to_t(y) for y in x) if isinstance(x, tuple) else paddle.to_tensor(x)  # noqa: E731
    feats, labels = [to_t(x) for x in batch[:-1]], to_t(batch[-1])
    model.eval()
    with paddle.no_grad():
        before = float(model.loss(model(*feats), labels))
        model.init_output_bias(counts)
        after = float(model.loss(model(*feats), labels))
    p = (counts + 1) / (counts + 1).sum()
    unigram = float(-np.log(p[batch[-1][0]]).mean())
    assert abs(before - np.log(len(tok.vocab))) < 0.1          # untrained: uniform over the vocabulary
    assert abs(after - unigram) < 0.1 and after < before - 0.5   # now: the unigram model's loss


def test_schedule_batch_size_and_pretraining_overrides():
    from ernie.modeling import ErnieConfig
    from ernie.pretraining.pretrain import per_process_batch_size, pretraining_config
    assert per_process_batch_size({"batch_size": 16}, 2) == 16  # per process, as before
    assert per_process_batch_size({"global_batch_size": 32}, 1) == 32
    assert per_process_batch_size({"global_batch_size": 32}, 2) == 16
    for bad, world in (({"global_batch_size": 30}, 4), ({"global_batch_size": 1}, 2),
                       ({"global_batch_size": 8, "batch_size": 8}, 1)):
        with pytest.raises(ValueError):
            per_process_batch_size(bad, world)
    base = ErnieConfig(**TINY, hidden_dropout_prob=0.1)
    cfg = {"model": {"pretraining_overrides": {"hidden_dropout_prob": 0.0}}}
    trained = pretraining_config(cfg, base)
    assert trained.hidden_dropout_prob == 0.0 and trained.hidden_size == base.hidden_size
    assert base.hidden_dropout_prob == 0.1  # the config that is saved is not touched
    assert pretraining_config({"model": {}}, base) is base
    with pytest.raises(ValueError, match="hidden_dropout"):
        pretraining_config({"model": {"pretraining_overrides": {"hidden_dropout": 0.0}}}, base)


def _schedules():
    paths = sorted(glob.glob(os.path.join(ROOT, "config", "pretrain", "*.json")))
    return [p for p in paths if "stages" in open(p, encoding="utf-8").read()]  # not the discourse markers


@pytest.mark.parametrize("path", _schedules(), ids=os.path.basename)
def test_shipped_schedules_are_valid(path):
    """Every schedule in config/pretrain: a known model section, real config fields in its
    pretraining_overrides, and a batch that resolves for one process and for the demo's two."""
    from ernie.modeling import ErnieConfig
    from ernie.pretraining.pretrain import MODEL_KEYS, load_config, per_process_batch_size, pretraining_config
    cfg = load_config(path)
    assert set(cfg.get("model", {})) <= MODEL_KEYS
    pretraining_config(cfg, ErnieConfig(**TINY))
    for world in (1, 2) if "global_batch_size" in cfg else (1,):
        assert per_process_batch_size(cfg, world) >= 1
