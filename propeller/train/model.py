"""``propeller.train.Model``: what a user writes to train with Propeller.

A Model is a ``paddle.nn.Layer`` with four hooks the loop calls in order:
``forward(features) -> predictions``, ``loss(predictions, labels) -> scalar``,
``backward(loss)`` and ``metrics(predictions, labels) -> {name: Metric}``.
Batches are tuples; in TRAIN and EVAL the last field is the label and the rest are the
features, in PREDICT every field is a feature (the original Propeller's convention).
"""
import paddle

from propeller.train.optim import OPTIMIZER_HPARAMS
from propeller.types import RunMode


class Model(paddle.nn.Layer):
    # The hparams this model reads; subclasses list only their own (see known_hparams). The
    # trainer refuses any other key (a typo would be silently ignored), except those under
    # "user": {...}.
    HPARAMS = OPTIMIZER_HPARAMS
    # Whether the trainer may compile this model's training forward with paddle.jit.to_static
    # when RunConfig to_static=true asks for it (off by default): a model that measures no faster
    # compiled (small students: the static run's fixed cost outweighs the gain) sets False.
    to_static = True

    @classmethod
    def known_hparams(cls):
        """Every hparam key this model class reads: the ``HPARAMS`` of it and its bases."""
        keys = set()
        for c in cls.__mro__:
            keys |= set(c.__dict__.get("HPARAMS", ()))
        return frozenset(keys)

    def __init__(self, hparams=None, mode=RunMode.TRAIN, run_config=None):
        # ``mode`` is taken for the original Propeller's signature; train/eval is paddle's
        # ``self.training``, which the loop sets
        super().__init__()
        self.hparams, self.run_config = hparams, run_config

    def forward(self, *features):
        raise NotImplementedError(f"{type(self).__name__} must define forward(*features)")

    def loss(self, predictions, labels):
        raise NotImplementedError(f"{type(self).__name__} must define loss(predictions, labels)")

    def backward(self, loss):
        loss.backward()

    def metrics(self, predictions, labels):
        """Metrics for one eval batch, as {name: propeller.metrics object fed with this batch}."""
        return {}

    def optimizer(self, max_steps):
        """(optimizer, lr_scheduler or None). Default: AdamW from the hparams (see optim.py)."""
        from propeller.train.optim import build_optimizer
        return build_optimizer(self, self.hparams, max_steps)

    def inference_spec(self):
        """InputSpecs of the exported inference model (None: this model cannot be exported)."""
        return None

    def warm_start(self, from_dir, predicate=None):
        """Load pre-trained parameters. Default: a ``model_state.pdparams`` file or a dir holding one.

        Models that know other formats (legacy ERNIE ``params/`` dirs) override this."""
        from propeller.train.saver import load_model_state
        return load_model_state(self, from_dir, predicate=predicate, strict=False)
