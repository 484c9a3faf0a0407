"""The trainer's compiled training forward (paddle.jit.to_static, opt-in): the same losses
as dygraph, one compile for every batch length (no recompile per shape), the opt-outs, and the
fallback to dygraph with one warning when conversion fails."""
import logging

import numpy as np
import pytest
from paddle.jit.sot.opcode_translator.executor.executor_cache import OpcodeExecutorCache
from paddle.jit.sot.utils.envs import strict_mode_guard

import _propeller_train_script as S
import propeller.paddle as propeller
from propeller.train import trainer as trainer_mod

EXAMPLES = S.make_examples()
STEPS, BATCH = 8, 4


def _lengths():
    """The padded length of each of the first STEPS training batches (they vary: 3..MAXLEN)."""
    it = iter(S.train_dataset(EXAMPLES, BATCH))
    return [next(it)[0].shape[1] for _ in range(STEPS)]


def _translations():
    return OpcodeExecutorCache().translate_count  # SOT's count of (re)compiled frames


def _run(tmp_path, name, model_class=S.TinyModel, dropout=0.1, **rc):
    cfg = dict(model_dir=str(tmp_path / name), max_steps=STEPS, save_steps=None, eval_steps=None,
               log_steps=None, seed=1)
    cfg.update(rc)
    learner = propeller.Learner(model_class, propeller.RunConfig(**cfg),
                                propeller.HParams(learning_rate=5e-3, warmup_steps=2, dropout=dropout))
    losses = []

    class Record(propeller.RunHook):
        def after_step(self, state):
            losses.append(state.loss)

    before = _translations()
    learner.train(S.train_dataset(EXAMPLES, BATCH), [Record()])
    return learner, losses, _translations() - before


@pytest.fixture
def warnings_of_propeller():
    """The propeller logger's WARNING records (it does not propagate to pytest's caplog)."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("propeller")
    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_dygraph_is_the_default_and_to_static_matches_it(tmp_path, monkeypatch):
    monkeypatch.delenv(trainer_mod.TO_STATIC_ENV, raising=False)
    assert propeller.RunConfig().to_static is False
    assert len(set(_lengths())) >= 3  # the batches really vary in length
    # no dropout: dygraph draws its masks from 16-bit random integers (ernie.modeling.dropout),
    # the compiled forward keeps F.dropout; the same distribution, not the same numbers
    eager, eager_losses, eager_compiles = _run(tmp_path, "eager", dropout=0.0)
    static, static_losses, static_compiles = _run(tmp_path, "static", dropout=0.0, to_static=True)
    assert eager._static is None and eager_compiles == 0
    assert static._static is not None and static._static.failed is None
    # compiled, but not once per length: SOT marks the length dynamic after it first changes
    assert 1 <= static_compiles <= 3
    np.testing.assert_allclose(static_losses, eager_losses, rtol=1e-5, atol=1e-6)
    a, b = S.params_of(eager.model), S.params_of(static.model)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-6, err_msg=k)
    # evaluation, prediction and export see the plain forward: the compiled one is not left installed
    assert "forward" not in static.model.__dict__


def test_env_var_opts_out(tmp_path, monkeypatch):
    monkeypatch.setenv(trainer_mod.TO_STATIC_ENV, "0")
    learner, _, compiles = _run(tmp_path, "env", to_static=True)
    assert learner._static is None and compiles == 0


def test_run_config_to_static_is_a_bool():
    with pytest.raises(ValueError, match="to_static"):
        propeller.RunConfig(to_static="no")
    assert propeller.RunConfig.from_dict({"to_static": False}).to_static is False


class HostReadModel(S.TinyModel):
    """Reads a tensor on the host inside forward: SOT's strict mode refuses that conversion."""

    def forward(self, ids, index=None):
        _, pooled = self.ernie(ids)
        self.last_norm = float(pooled.abs().sum().numpy())
        return self.fc(self.dropout(pooled))


def test_failed_conversion_falls_back_to_dygraph_and_says_why(tmp_path, monkeypatch, warnings_of_propeller):
    monkeypatch.delenv(trainer_mod.TO_STATIC_ENV, raising=False)
    _, eager_losses, _ = _run(tmp_path, "eager", HostReadModel, to_static=False)
    with strict_mode_guard(True):  # a graph break becomes an error, as a failed conversion is
        learner, losses, _ = _run(tmp_path, "fallback", HostReadModel, to_static=True)
    assert learner._static.failed is not None
    said = [r.getMessage() for r in warnings_of_propeller if "to_static" in r.getMessage()]
    assert len(said) == 1, said  # one warning, not one per step
    assert "HostReadModel.forward" in said[0] and type(learner._static.failed).__name__ in said[0]
    assert "dygraph" in said[0]
    assert len(losses) == STEPS  # the run went on, in dygraph, with the same losses
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-6, atol=1e-7)
    assert "forward" not in learner.model.__dict__


class Declines(S.TinyModel):
    to_static = False


def test_a_model_may_decline(tmp_path, monkeypatch):
    monkeypatch.delenv(trainer_mod.TO_STATIC_ENV, raising=False)
    learner, _, compiles = _run(tmp_path, "declines", Declines, to_static=True)
    assert learner._static is None and compiles == 0
    # distillation: the small students measured no faster compiled, ERNIE-tiny faster (RESULTS.md)
    from distill.model import DistillModel, check_hparams
    for student, want in (("bow", False), ("cnn", False), ("lstm", False), ("ernie_tiny", True)):
        model = DistillModel(check_hparams({"student": student, "vocab_size": 50}))
        assert model.to_static is want, student
