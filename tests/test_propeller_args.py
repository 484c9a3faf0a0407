"""Propeller's RunConfig / HParams / ArgumentParser: precedence, comments, env fallbacks, errors."""
import json
import pickle

import pytest

import propeller.paddle as propeller
from propeller.util import ENV_HPARAMS, ENV_RUNCONFIG, strip_comments


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV_RUNCONFIG, raising=False)
    monkeypatch.delenv(ENV_HPARAMS, raising=False)


def _parse(argv):
    parser = propeller.ArgumentParser("test")
    parser.add_argument("--data_dir")
    args = parser.parse_args(argv)
    return propeller.parse_runconfig(args), propeller.parse_hparam(args)


def test_later_hparam_wins_files_and_literals(tmp_path):
    cfg = tmp_path / "ernie_config.json"
    cfg.write_text(
        "# ERNIE base\n"
        "{\n"
        '  "hidden_size": 768,  # width\n'
        '  "learning_rate": 1e-4,\n'
        '  "vocab_file": "a#b.txt"  # "#" inside a string is not a comment\n'
        "}\n"
    )
    rc, hp = _parse(
        [
            "--hparam", str(cfg),
            "--hparam", '{"learning_rate": 5e-5, "batch_size": 32}  # later wins',
            "--hparam", "{'batch_size': 16, 'use_fp16': False}",  # Python literal dict
            "--data_dir", "d",
        ]
    )
    assert hp.hidden_size == 768
    assert hp.learning_rate == 5e-5
    assert hp.batch_size == 16
    assert hp["use_fp16"] is False
    assert hp.vocab_file == "a#b.txt"
    assert rc == propeller.RunConfig()  # nothing given: defaults


def test_run_config_string_and_file(tmp_path):
    rc, _ = _parse(["--run_config", '{"model_dir": "out", "max_steps": 100, "save_steps": 10}'])
    assert (rc.model_dir, rc.max_steps, rc.save_steps, rc.log_steps) == ("out", 100, 10, 10)
    f = tmp_path / "rc.json"
    f.write_text('{"model_dir": "o2", # comment\n "max_steps": 1e3, "max_ckpt": -1}')
    rc, _ = _parse(["--run_config", str(f)])
    assert rc.model_dir == "o2" and rc.max_steps == 1000 and isinstance(rc.max_steps, int)
    assert rc.max_ckpt is None  # -1 means keep all


def test_env_fallbacks(monkeypatch, tmp_path):
    f = tmp_path / "hp.json"
    f.write_text('{"lr": 0.1}')
    monkeypatch.setenv(ENV_RUNCONFIG, '{"model_dir": "env_dir", "max_steps": 7}')
    monkeypatch.setenv(ENV_HPARAMS, str(f))
    rc, hp = _parse([])
    assert rc.model_dir == "env_dir" and rc.max_steps == 7
    assert hp.lr == 0.1
    # command-line values take precedence over the environment
    rc, hp = _parse(["--run_config", '{"model_dir": "cli"}', "--hparam", '{"lr": 0.2}'])
    assert rc.model_dir == "cli" and hp.lr == 0.2


def test_unknown_runconfig_key_names_key_and_file(tmp_path):
    f = tmp_path / "rc.json"
    f.write_text('{"model_dir": "o", "max_step": 100}')
    with pytest.raises(ValueError) as e:
        _parse(["--run_config", str(f)])
    assert "'max_step'" in str(e.value) and str(f) in str(e.value)
    with pytest.raises(ValueError, match="unknown RunConfig key 'shit_steps'"):
        propeller.RunConfig(shit_steps=1)


@pytest.mark.parametrize(
    "key,value",
    [("max_steps", "100"), ("save_steps", 0), ("log_steps", True), ("model_dir", 3), ("skip_steps", -2), ("eval_steps", 1.5)],
)
def test_runconfig_wrong_type_names_key(key, value):
    with pytest.raises(ValueError, match="'%s'" % key):
        propeller.RunConfig(**{key: value})
    with pytest.raises(ValueError, match="--run_config.*'%s'" % key):
        propeller.parse_runconfig(type("A", (), {"run_config": json.dumps({key: value})})())


def test_runconfig_attribute_assignment_is_checked_and_replace_works():
    rc = propeller.RunConfig(model_dir="o", max_steps=1)
    with pytest.raises(ValueError, match="'max_step'"):
        rc.max_step = 3
    rc2 = rc.replace(max_steps=5)
    assert rc.max_steps == 1 and rc2.max_steps == 5 and rc2.model_dir == "o"
    assert pickle.loads(pickle.dumps(rc2)) == rc2
    assert propeller.RunConfig.from_json(rc2.to_json()) == rc2


def test_unparsable_text_reports_argument_file_and_position(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{\n  "a": 1,\n  "b": 2\n  "c": 3\n}\n')  # missing comma on line 3
    with pytest.raises(ValueError) as e:
        _parse(["--hparam", '{"ok": 1}', "--hparam", str(f)])
    msg = str(e.value)
    assert "--hparam #2" in msg and str(f) in msg and "line 4 column 3" in msg
    with pytest.raises(ValueError, match="no such file"):
        _parse(["--hparam", "config/does_not_exist.json"])
    with pytest.raises(ValueError, match="--run_config.*must be a dict"):
        _parse(["--run_config", "{1, 2}"])  # a set literal


def test_literal_eval_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = "{'a': __import__('os').system('touch %s')}" % marker
    with pytest.raises(ValueError, match="--hparam"):
        _parse(["--hparam", payload])
    assert not marker.exists()


def test_strip_comments_keeps_positions_and_strings():
    text = '{"a": "x # y", # c\n "b": \'#\'}'
    out = strip_comments(text)
    assert len(out) == len(text) and out.count("\n") == 1
    assert '"x # y"' in out and "'#'" in out and "# c" not in out


def test_hparams_behaviour():
    hp = propeller.HParams(a=1, b={"c": 2})
    assert hp.a == 1 and hp.get("zz", 5) == 5 and "a" in hp and "zz" not in hp
    with pytest.raises(AttributeError, match="'zz'"):
        hp.zz
    assert not hasattr(hp, "zz")
    joined = hp.join(propeller.HParams(a=3, d=4))
    assert joined.to_dict() == {"a": 3, "b": {"c": 2}, "d": 4}
    assert hp.a == 1  # join does not modify
    assert propeller.HParams.from_json(joined.to_json()) == joined
    assert propeller.HParams.from_dict({"x": 1}).x == 1
    d = hp.to_dict()
    d["b"]["c"] = 99
    assert hp.b["c"] == 2  # to_dict is a copy
    assert pickle.loads(pickle.dumps(hp)) == hp


def test_spec_types():
    spec = propeller.ModelSpec(loss=1.0, predictions=[2], mode=propeller.RunMode.TRAIN)
    assert spec.metrics is None and spec.mode == propeller.RunMode.TRAIN
    assert propeller.InferenceSpec(inputs=["x"], outputs=["y"]).inputs == ["x"]
    ws = propeller.WarmStartSetting(predicate_fn=lambda name: True, from_dir="d")
    assert ws.from_dir == "d" and ws.predicate_fn("w")
    assert {propeller.RunMode.TRAIN, propeller.RunMode.EVAL, propeller.RunMode.PREDICT} == set(propeller.RunMode)


# ---------------------------------------------------------------------------- "base": config inheritance

def _write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_base_files_merge_depth_first_later_wins(tmp_path):
    (tmp_path / "sub").mkdir()
    # root -> [mid, other]; mid -> sub/deep.json (relative to mid's directory); nested dicts merge
    _write(tmp_path / "sub" / "deep.json", {"epoch": 5, "warmup_proportion": 0.2, "adv": {"method": "pgd", "k": 3}})
    _write(tmp_path / "mid.json", {"base": "sub/deep.json", "epoch": 4, "batch_size": 16,
                                   "adv": {"method": "fgm", "epsilon": 1.0}})
    _write(tmp_path / "other.json", {"batch_size": 8, "weight_decay": 0.0})
    root = _write(tmp_path / "root.json", {"base": ["mid.json", "other.json"], "learning_rate": 1e-4,
                                           "adv": {"epsilon": 0.5}})
    rc, hp = _parse(["--hparam", root, "--hparam", '{"adv": {"k": 2}}'])
    assert hp.to_dict() == {"epoch": 4, "warmup_proportion": 0.2, "batch_size": 8, "weight_decay": 0.0,
                            "learning_rate": 1e-4, "adv": {"method": "fgm", "k": 2, "epsilon": 0.5}}
    # a literal's base is relative to the working directory; absolute paths work anywhere
    rc, hp = _parse(["--run_config", json.dumps({"base": _write(tmp_path / "rc.json", {"max_steps": 7}),
                                                 "model_dir": "m"})])
    assert (rc.model_dir, rc.max_steps) == ("m", 7)


def test_base_errors_name_the_chain(tmp_path):
    a = _write(tmp_path / "a.json", {"base": "b.json"})
    _write(tmp_path / "b.json", {"base": "c.json"})
    _write(tmp_path / "c.json", {"base": "a.json"})
    with pytest.raises(ValueError, match=r"cycle: .*a\.json -> .*b\.json -> .*c\.json -> a\.json"):
        _parse(["--hparam", a])
    miss = _write(tmp_path / "m.json", {"base": ["b2.json"]})
    _write(tmp_path / "b2.json", {"base": "gone.json"})
    with pytest.raises(ValueError, match=r"base file 'gone\.json' not found .*chain: .*m\.json -> .*b2\.json -> gone\.json"):
        _parse(["--hparam", miss])
    with pytest.raises(ValueError, match=r"'base' must be a file name or a list"):
        _parse(["--hparam", '{"base": 3}'])
    # a bad run_config key is reported against the file that holds it, not the one that includes it
    inner = _write(tmp_path / "inner.json", {"max_step": 3})
    with pytest.raises(ValueError, match=r"inner\.json.*unknown RunConfig key 'max_step'"):
        _parse(["--run_config", _write(tmp_path / "outer.json", {"base": inner, "model_dir": "m"})])


def test_print_config_shows_merged_values_and_origins(tmp_path, capsys):
    base = _write(tmp_path / "base.json", {"learning_rate": 1e-3, "epoch": 3, "adv": {"method": "fgm"}})
    top = _write(tmp_path / "top.json", {"base": "base.json", "epoch": 2})
    parser = propeller.ArgumentParser("test")
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["--hparam", top, "--hparam", '{"batch_size": 4}', "--run_config", '{"model_dir": "o"}',
                           "--print_config"])
    assert e.value.code == 0
    lines = dict(line.split(" = ", 1) for line in capsys.readouterr().out.splitlines() if " = " in line)
    assert lines["learning_rate"] == f"0.001    # base file '{base}'"
    assert lines["epoch"] == f"2    # --hparam #1 file '{top}'"
    assert lines["adv.method"] == f"\"fgm\"    # base file '{base}'"
    assert lines["batch_size"] == "4    # --hparam #2"
    assert lines["model_dir"] == "\"o\"    # --run_config"
    assert lines["save_steps"] == "1000    # default"
