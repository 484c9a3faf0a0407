"""Issue 12: no malformed request kills a worker or gets a wrong answer, every bad input is named,
no hparam typo is silently ignored, user errors on the command line are one message (exit 2)."""
import gzip
import io
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

from propeller.cli import run_main
from propeller.inference.predictor import InputSpec, check_inputs
from propeller.service import server as srv
from propeller.service import wire
from propeller.types import HParams, check_hparams

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _crash_predict import CrashFactory  # noqa: E402

VOCAB, TYPES, MAX_POS = 50, 2, 16


# ---------------------------------------------------------------------------------------
# the server: crashes of the predict function, multipart requests, envelopes
# ---------------------------------------------------------------------------------------
@pytest.fixture
def crash_server():
    s = srv.Server(CrashFactory(), port=0, num_workers=1, cpu_affinity="none", start_timeout=60)
    s.start()
    ctx = zmq.Context()
    socks = []

    def connect(kind=zmq.REQ):
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 30000)  # a restart spawns a fresh interpreter
        sock.connect(s.address)
        socks.append(sock)
        return sock

    try:
        yield s, connect
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()
        s.stop()


def _ask(sock, arrays):
    sock.send(wire.serialize(arrays))
    return sock.recv()


@pytest.mark.parametrize("trigger, how", [(666, "SIGABRT"), (667, "SIGSEGV")])
def test_crashing_predict_gets_error_reply_and_worker_restarts(crash_server, caplog, trigger, how):
    s, connect = crash_server
    req = connect()
    x = np.array([[1, 2, 3]], np.int64)
    np.testing.assert_array_equal(wire.deserialize_reply(_ask(req, [x]))[0], x * 2)
    with caplog.at_level(logging.WARNING, logger="propeller.service"):
        with pytest.raises(wire.ServerError, match=f"worker crashed \\(signal {how}\\) while answering"):
            wire.deserialize_reply(_ask(req, [np.array([[trigger]], np.int64)]))
        # the next request is served (by the restarted worker)
        np.testing.assert_array_equal(wire.deserialize_reply(_ask(req, [x + 1]))[0], (x + 1) * 2)
    assert s.stats["worker_crashes"] == 1 and s.stats["restarts"] == 1
    assert any("crashed with signal " + how in r.getMessage() and "crash #1" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_system_exit_in_predict_does_not_end_the_worker(crash_server):
    s, connect = crash_server
    req = connect()
    with pytest.raises(wire.ServerError, match="predict failed: SystemExit"):
        wire.deserialize_reply(_ask(req, [np.array([[668]], np.int64)]))
    x = np.array([[4]], np.int64)
    np.testing.assert_array_equal(wire.deserialize_reply(_ask(req, [x]))[0], x * 2)
    assert s.stats["worker_crashes"] == 0 and s.stats["restarts"] == 0


def test_multipart_and_envelopes(crash_server):
    s, connect = crash_server
    req, dealer = connect(), connect(zmq.DEALER)
    x = np.array([[5, 6]], np.int64)
    good = wire.serialize([x])
    for frames in ([good, good], [good, b""], [b"", good], [good] * 5):
        req.send_multipart(frames)
        err = wire.parse_error(wire.Slots.FromString(req.recv()))
        assert err and f"expected 1 message frame (a serialized Slots), got {len(frames)}" in err, err
    # a DEALER with the REQ-style empty delimiter, and one without any: both answered in kind
    dealer.send_multipart([b"", good])
    delim, reply = dealer.recv_multipart()
    assert delim == b"" and (wire.deserialize_reply(reply)[0] == x * 2).all()
    dealer.send(good)
    reply, = dealer.recv_multipart()
    assert (wire.deserialize_reply(reply)[0] == x * 2).all()
    dealer.send_multipart([b""])  # an envelope and no message at all
    err = wire.parse_error(wire.Slots.FromString(dealer.recv_multipart()[-1]))
    assert "got 0" in err
    np.testing.assert_array_equal(wire.deserialize_reply(_ask(req, [x]))[0], x * 2)
    assert s.stats["worker_crashes"] == 0 and s.stats["restarts"] == 0
    assert s.stats["error_replies"] == 5


def test_handle_request_takes_frames_or_bytes():
    echo = lambda arrays: arrays  # noqa: E731
    good = wire.serialize([np.ones((1, 2), np.int64)])
    assert wire.deserialize_reply(srv.handle_request(echo, good))[0].shape == (1, 2)
    assert wire.deserialize_reply(srv.handle_request(echo, [good]))[0].shape == (1, 2)
    with pytest.raises(wire.ServerError, match="got 2"):
        wire.deserialize_reply(srv.handle_request(echo, [good, good]))


# ---------------------------------------------------------------------------------------
# input checks (the one place: propeller.inference.predictor.check_inputs)
# ---------------------------------------------------------------------------------------
def _ernie_specs(axes=True):
    lim = dict(max_shape=[-1, MAX_POS], axes=["batch", "seq"] if axes else None)
    return [InputSpec("src_ids", [-1, -1], np.dtype("int64"), range=(0, VOCAB), **lim),
            InputSpec("sent_ids", [-1, -1], np.dtype("int64"), range=(0, TYPES), **lim),
            InputSpec("input_mask", [-1, -1], np.dtype("float32"), **lim)]


def _feed(b=2, s=5):
    return [np.ones((b, s), np.int64), np.zeros((b, s), np.int64), np.ones((b, s), np.float32)]


@pytest.mark.parametrize("bad", [VOCAB, 10 * VOCAB + 1, 2 ** 31, 2 ** 62, -1, -VOCAB, -2 ** 40, -2 ** 63])
def test_token_ids_outside_the_vocabulary(bad):
    feed = _feed()
    feed[0][1, 2] = bad
    with pytest.raises(ValueError, match=r"slot 0 \('src_ids'\): values must lie in \[0, 50\)"):
        check_inputs(_ernie_specs(), feed)


@pytest.mark.parametrize("bad", [-1, TYPES, 2 ** 40])
def test_type_ids_outside_their_table(bad):
    feed = _feed()
    feed[1][0, 0] = bad
    with pytest.raises(ValueError, match=r"slot 1 \('sent_ids'\): values must lie in \[0, 2\)"):
        check_inputs(_ernie_specs(), feed)


@pytest.mark.parametrize("axes", [True, False])
def test_batch_and_sequence_dims_must_agree(axes):
    feed = _feed(2, 8)
    feed[1] = np.zeros((1, 8), np.int64)  # would broadcast in paddle
    with pytest.raises(ValueError, match=r"slot 1 \('sent_ids'\): batch dim \(axis 0\) is 1 \[1, 8\], "
                                         r"expected 2 as in slot 0"):
        check_inputs(_ernie_specs(axes), feed)
    if axes:  # the sequence dim is declared too
        feed = _feed(2, 8)
        feed[2] = np.ones((2, 7), np.float32)
        with pytest.raises(ValueError, match=r"slot 2 \('input_mask'\): seq dim \(axis 1\) is 7"):
            check_inputs(_ernie_specs(), feed)


@pytest.mark.parametrize("make, match", [
    (lambda f: f[:2], r"takes 3 inputs"),
    (lambda f: f + [f[0]], r"takes 3 inputs"),
    (lambda f: [f[0].astype(np.float64)] + f[1:], r"slot 0 .*float64 cannot be safely cast to the declared int64"),
    (lambda f: [f[0].astype(np.uint64)] + f[1:], r"slot 0 .*uint64 cannot be safely cast"),
    (lambda f: [f[0][0]] + f[1:], r"slot 0 .*rank 1 \[5\], expected rank 2"),
    (lambda f: [f[0][:, :, None]] + f[1:], r"slot 0 .*rank 3"),
    (lambda f: [x[:0] for x in f], r"slot 0 .*empty or scalar shape \[0, 5\]"),
    (lambda f: [x[:, :0] for x in f], r"empty or scalar shape \[2, 0\]"),
    (lambda f: [np.ones((2, MAX_POS + 1), np.int64), np.zeros((2, MAX_POS + 1), np.int64),
                np.ones((2, MAX_POS + 1), np.float32)], r"slot 0 .*exceeds the model's largest \[-1, 16\]"),
    (lambda f: f[:2] + [np.full_like(f[2], np.nan)], r"slot 2 \('input_mask'\): expected finite values"),
    (lambda f: f[:2] + [np.full_like(f[2], np.inf)], r"slot 2 .*finite"),
])
def test_malformed_inputs_name_the_slot(make, match):
    with pytest.raises(ValueError, match=match):
        check_inputs(_ernie_specs(), make(_feed()))


def test_safe_casts_and_valid_inputs_pass():
    feed = _feed()
    feed[0] = feed[0].astype(np.int32)
    feed[0][0, 0] = VOCAB - 1
    out = check_inputs(_ernie_specs(), feed)
    assert out[0].dtype == np.int64 and out[0][0, 0] == VOCAB - 1


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A tiny ERNIE encoder exported the way inference.export does it (limits in the meta)."""
    import paddle
    from ernie.export import ErnieEncoderExport, ernie_input_limits, ernie_input_spec
    from ernie.modeling import ErnieConfig, ErnieModel
    from propeller.inference.export import export_inference_model
    paddle.seed(3)
    cfg = ErnieConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=MAX_POS, type_vocab_size=TYPES)
    layer = ErnieEncoderExport(ErnieModel(cfg), "pooler", with_sequence=False)
    d = str(tmp_path_factory.mktemp("tiny_export"))
    spec = ernie_input_spec()
    export_inference_model(layer, d, spec, input_limits=ernie_input_limits(cfg, [s.name for s in spec]))
    return d


def test_predictor_refuses_before_paddle_sees_it(tiny_export):
    from propeller.inference.export import read_meta
    from propeller.inference.predictor import Predictor
    meta = read_meta(tiny_export)
    assert meta["outputs"] == ["output_0"]  # filled even when the caller names none
    assert meta["inputs"][0]["axes"] == ["batch", "seq"]
    p = Predictor(tiny_export)
    src, sent = np.ones((2, 4), np.int64), np.zeros((2, 4), np.int64)
    ref, = p.predict([src, sent])
    for bad, match in (([src * 2 ** 31, sent], "slot 0"), ([src * -2 ** 40, sent], "slot 0"),
                       ([src, sent - 1], "slot 1"), ([src, sent[:1]], "batch dim")):
        with pytest.raises(ValueError, match=match):
            p.predict(bad)
    np.testing.assert_array_equal(p.predict([src, sent])[0], ref)


# ---------------------------------------------------------------------------------------
# hparams: unknown keys are errors
# ---------------------------------------------------------------------------------------
def test_unknown_hparam_is_named_with_the_closest_key():
    known = {"learning_rate", "batch_size", "warmup_proportion"}
    with pytest.raises(ValueError, match=r"unknown hparam 'learnig_rate' \(did you mean 'learning_rate'\?\)"):
        check_hparams({"learnig_rate": 1e-3}, known)
    with pytest.raises(ValueError, match=r"--hparam: unknown hparam 'batchsize' \(did you mean 'batch_size'"):
        HParams(batchsize=3).check(known, source="--hparam")
    with pytest.raises(ValueError, match=r"unknown hparam 'zzz'\. Keys of your own go under \"user\""):
        check_hparams({"zzz": 1}, known)
    check_hparams({"learning_rate": 1, "user": {"anything": 1, "learnig_rate": 2}}, known)  # the opt-out
    with pytest.raises(ValueError, match="'user' must be a dict"):
        check_hparams({"user": 3}, known)


def test_learner_refuses_unknown_hparams_and_accepts_declared_ones(tmp_path):
    import propeller.paddle as propeller
    from _propeller_train_script import TinyModel
    rc = propeller.RunConfig(model_dir=str(tmp_path), max_steps=1)
    with pytest.raises(ValueError, match=r"'learnig_rate' \(did you mean 'learning_rate'\?\)"):
        propeller.Learner(TinyModel, rc, propeller.HParams(learnig_rate=1e-3))
    with pytest.raises(ValueError, match=r"'dropuot' \(did you mean 'dropout'\?\)"):
        propeller.Learner(TinyModel, rc, propeller.HParams(dropuot=0.0))
    propeller.Learner(TinyModel, rc, propeller.HParams(dropout=0.0, learning_rate=1e-3, user={"x": 1}))


def test_finetune_models_declare_what_they_read():
    from ernie.finetune.classifier import ClassifierModel
    from ernie.finetune.mrc import MrcModel
    from ernie.finetune.ner import NerModel
    from propeller.train.trainer import known_hparams
    assert {"learning_rate", "batch_size", "epoch", "num_labels", "ernie_config"} <= known_hparams(ClassifierModel)
    assert "labels" in known_hparams(NerModel) and "n_best" in known_hparams(MrcModel)
    assert "num_labels" not in known_hparams(NerModel)


# ---------------------------------------------------------------------------------------
# the command line: user errors are one message and exit status 2
# ---------------------------------------------------------------------------------------
def test_run_main_user_errors(capsys, monkeypatch):
    monkeypatch.delenv("PROPELLER_DEBUG", raising=False)

    def bad_config(argv=None):
        raise ValueError("--run_config: unknown RunConfig key 'modeldir'")

    assert run_main(bad_config, [], prog="cmd") == 2
    err = capsys.readouterr().err
    assert err == "cmd: error: --run_config: unknown RunConfig key 'modeldir'\n"
    assert run_main(lambda a: open("/nonexistent/x"), [], prog="cmd") == 2
    assert capsys.readouterr().err == "cmd: error: /nonexistent/x: No such file or directory\n"
    assert run_main(lambda a: sys.exit("no model config"), [], prog="cmd") == 2
    assert capsys.readouterr().err == "cmd: error: no model config\n"
    assert run_main(lambda a: 0, [], prog="cmd") == 0 and run_main(lambda a: {"dev": 1}, [], prog="cmd") == 0
    seen = []
    assert run_main(lambda a: seen.append(a), ["--x", "--debug", "--", "--debug"], prog="cmd") == 0
    assert seen == [["--x", "--", "--debug"]]  # --debug is ours; after -- it is another command's
    assert run_main(bad_config, ["--debug"], prog="cmd") == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("PROPELLER_DEBUG", "1")
    assert run_main(bad_config, [], prog="cmd") == 2
    assert "Traceback" in capsys.readouterr().err
    with pytest.raises(RuntimeError):  # a bug keeps its traceback
        run_main(lambda a: (_ for _ in ()).throw(RuntimeError("bug")), [], prog="cmd")
    with pytest.raises(SystemExit):  # argparse's own exit status is kept
        run_main(lambda a: sys.exit(2), [], prog="cmd")


def _run(args, **kw):
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("PROPELLER_DEBUG", None)
    return subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True, env=env,
                          timeout=240, **kw)


@pytest.fixture(scope="module")
def cli_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "data" / "train").mkdir(parents=True)
    vocab = d / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "好", "差"]) + "\n", encoding="utf-8")
    (d / "data" / "train" / "a.tsv").write_bytes("好好\t1\n".encode() + b"\xff\xfe bad\t0\n" + "差\t0\n".encode())
    (d / "bad.pdparams").write_bytes(b"\x80\x04 not a checkpoint")
    (d / "cfg.json").write_text('{"vocab_size": 7, "hidden_size": 8, "num_hidden_layers": 1, '
                                '"num_attention_heads": 2, "max_position_embeddings": 16}')
    return d


def _classifier(d, *extra):
    return ["example/finetune_classifier.py", "--data_dir", str(d / "data"), "--vocab_file", str(d / "vocab.txt"),
            "--ernie_config", str(d / "cfg.json"), "--max_seqlen", "8",
            "--run_config", '{"model_dir": "%s", "max_steps": 1, "save_steps": null}' % (d / "out")] + list(extra)


@pytest.mark.parametrize("extra, message", [
    (["--hparam", '{"learnig_rate": 1e-3}'], "unknown hparam 'learnig_rate' (did you mean 'learning_rate'?)"),
    (["--run_config", '{"model_dir": "x", "max_step": 3}'], "unknown RunConfig key 'max_step'"),
    (["--run_config", '{"model_dir": "x" "max_steps": 3}'], "--run_config"),
    (["--warm_start_from", "BAD", "--on_bad_line", "skip"], "bad.pdparams: cannot read"),
    (["--warm_start_from", "/nonexistent/ckpt", "--on_bad_line", "skip"], "/nonexistent/ckpt"),
    ([], "a.tsv:2: not valid UTF-8 (byte b'\\xff' at column 1)"),
])
def test_finetune_cli_user_errors(cli_data, extra, message):
    extra = [str(cli_data / "bad.pdparams") if x == "BAD" else x for x in extra]
    r = _run(_classifier(cli_data, *extra))
    assert r.returncode == 2, r.stderr[-3000:]
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    if not extra:  # --debug shows where it came from
        r = _run(_classifier(cli_data, "--debug"))
        assert r.returncode == 2 and "Traceback" in r.stderr


def test_inference_cli_missing_files(tmp_path):
    r = _run(["-m", "propeller.tools.start_server", "-m", str(tmp_path / "nothing"), "-p", "0"])
    assert r.returncode == 2 and "no exported model" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # one line, no usage dump


# ---------------------------------------------------------------------------------------
# data: undecodable bytes are a bad line like any other; skip modes end with a total
# ---------------------------------------------------------------------------------------
def test_finetune_tsv_undecodable_line(tmp_path, caplog):
    from ernie.finetune.data import BadLineError, BadLines, read_tsv
    f = tmp_path / "t.tsv"
    f.write_bytes("好\t1\n".encode() + b"\xe5\xa5\t0\n" + b"ok\t1\n" + b"\xc3(x\t1\n")
    layouts = {2: ("text_a", "label")}
    with pytest.raises(BadLineError, match=r"t\.tsv:2: not valid UTF-8"):
        list(read_tsv([str(f)], layouts, BadLines("error")))
    bad = BadLines("skip", "train")
    rows = list(read_tsv([str(f)], layouts, bad))
    assert [r[1] for r in rows] == [1, 3] and bad.count == 2
    with caplog.at_level(logging.INFO, logger="ernie.finetune"):
        bad.report()
        BadLines("skip", "dev").report()
    msgs = [r.getMessage() for r in caplog.records]
    assert "[train] 2 bad line(s) skipped in total" in msgs and "[dev] 0 bad line(s) skipped in total" in msgs


def test_predict_stdin_undecodable_line_keeps_alignment():
    from ernie.finetune.data import BadLineError, BadLines
    from ernie.finetune.runner import stdin_records
    inp = io.BytesIO("a\n".encode() + b"\xff\n" + "b\n".encode())
    bad = BadLines("skip")
    recs = [r for chunk in stdin_records(inp, {1: ("text_a",)}, bad) for r in chunk]
    assert [(n, r and r["text_a"]) for n, r in recs] == [(1, "a"), (2, None), (3, "b")] and bad.count == 1
    with pytest.raises(BadLineError, match="<stdin>:2: not valid UTF-8"):
        [r for chunk in stdin_records(io.BytesIO(b"a\n\xff\n"), {1: ("text_a",)}, BadLines("error")) for r in chunk]


def test_propeller_dataset_undecodable_line(tmp_path, caplog):
    from propeller.data import BadLineError
    from propeller.data.feature_column import FeatureColumns, LabelColumn, TextColumn
    f = tmp_path / "d.tsv"
    f.write_bytes(b"a b\t1\n\xff\xfe\t0\nc\t1\n")
    cols = FeatureColumns([TextColumn("text_a", vocab_dict={"a": 0, "b": 1, "c": 2}), LabelColumn("label")])
    with pytest.raises(BadLineError, match=r"d\.tsv:2: not valid UTF-8"):
        list(cols.build_dataset("train", data_file=str(f), header=False))
    with caplog.at_level(logging.INFO):
        ds = cols.build_dataset("train", data_file=str(f), header=False, on_bad_line="skip")
        assert len(list(ds)) == 2 and ds.bad_lines.count == 1
    assert any("1 bad lines skipped" in r.getMessage() for r in caplog.records)


def test_id_corpus_undecodable_and_total(tmp_path, caplog):
    from ernie.pretraining.id_corpus import IdCorpus, read_id_file
    good = "1 5 2;0 0 0;0 1 2;-1 0 -1;1\n"
    data = tmp_path / "part.gz"
    with gzip.open(data, "wb") as f:
        f.write(good.encode() + b"1 \xff 2;0 0 0;0 1 2;-1 0 -1;1\n" + good.encode() + b"1 2;0;0;0\n")
    fl = tmp_path / "filelist"
    fl.write_text(f"{data}\t0.5\n")
    with pytest.raises(ValueError, match=r"part\.gz:2: not valid UTF-8"):
        list(read_id_file(str(data)))
    with caplog.at_level(logging.INFO, logger="ernie"):
        corpus = IdCorpus(str(fl))
    assert len(corpus) == 2
    assert any("2 malformed lines skipped in total" in r.getMessage() for r in caplog.records)
    clean = tmp_path / "clean.txt"
    clean.write_text(good)
    fl.write_text(f"{clean}\t0.5\n")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ernie"):
        IdCorpus(str(fl))
    assert any("0 malformed lines skipped in total" in r.getMessage() for r in caplog.records)
    damaged = tmp_path / "cut.gz"
    damaged.write_bytes(data.read_bytes()[:20])
    with pytest.raises(ValueError, match="damaged gzip"):
        list(read_id_file(str(damaged), "skip"))


# ---------------------------------------------------------------------------------------
# checkpoints and exports
# ---------------------------------------------------------------------------------------
def test_stale_checkpoint_temp_dirs_removed_at_start(tmp_path):
    import propeller.paddle as propeller
    import _propeller_train_script as S
    md = tmp_path / "run"
    (md / ".model_5.tmp-0123456789ab").mkdir(parents=True)
    (md / ".model_5.tmp-0123456789ab" / "model_state.pdparams").write_bytes(b"half")
    (md / ".ckpt_info.tmp-ba9876543210").write_text("model_5\n")
    (md / ".model_3.old-0123456789ab").mkdir()  # possibly the only copy of model_3: kept
    (md / "notes.tmp-0123456789ab").write_text("not ours (not hidden)")
    rc = propeller.RunConfig(model_dir=str(md), max_steps=1, save_steps=None, eval_steps=None, log_steps=None)
    learner = propeller.Learner(S.TinyModel, rc, propeller.HParams(learning_rate=1e-3, dropout=0.0))
    learner.train(S.train_dataset(S.make_examples()[:8], 4))
    left = sorted(os.listdir(md))
    assert ".model_5.tmp-0123456789ab" not in left and ".ckpt_info.tmp-ba9876543210" not in left
    assert ".model_3.old-0123456789ab" in left and "notes.tmp-0123456789ab" in left


def test_finetune_inference_export_meta_is_filled(tmp_path):
    from ernie.finetune.classifier import ClassifierModel
    from ernie.finetune.ner import NerModel
    from propeller.inference.export import read_meta
    from propeller.train.exporter import BestInferenceModelExporter
    cfg = dict(vocab_size=VOCAB, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
               max_position_embeddings=MAX_POS)
    vocab = tmp_path / "v.txt"
    vocab.write_text("[PAD]\n[CLS]\n")
    tok = {"class": "FullTokenizer", "vocab_file": "vocab.txt", "do_lower_case": True, "max_seqlen": 8}

    class _L:
        pass

    for model, outputs, per_token in ((ClassifierModel(HParams(ernie_config=cfg, num_labels=3)), ["logits"], []),
                                      (NerModel(HParams(ernie_config=cfg)), ["logits"], ["logits"])):
        learner, state = _L(), _L()
        learner.model, state.gstep = model, 1
        out = tmp_path / type(model).__name__
        BestInferenceModelExporter(str(out), assets={"vocab.txt": str(vocab)}, meta={"tokenizer": tok}).export(
            learner, {"loss": 1.0}, state)
        meta = read_meta(str(out / "inference"))
        assert meta["outputs"] == outputs and meta["per_token_outputs"] == per_token
        assert meta["config"]["vocab_size"] == VOCAB and meta["tokenizer"] == tok
        assert meta["model"]["num_labels"] == model.num_labels
        assert (out / "inference" / "vocab.txt").is_file()
        assert [i["range"] for i in meta["inputs"]] == [[0, VOCAB], [0, 2]]
