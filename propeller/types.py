"""Plain data types shared by the Propeller trainer, its data pipeline and its users.

Nothing here imports paddle, so configs can be parsed and checked cheaply (and in tools
that never train).
"""
import copy
import difflib
import enum
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

__all__ = ["RunMode", "RunConfig", "HParams", "USER_NAMESPACE", "check_hparams", "ModelSpec", "InferenceSpec",
           "WarmStartSetting"]

# hparams under this key are the user's own (a custom model reads ``hparams.user[...]``):
# never checked against the known keys
USER_NAMESPACE = "user"


class RunMode(enum.IntEnum):
    """What a model function is being asked to do."""

    TRAIN = 1
    PREDICT = 2
    EVAL = 3


# name -> (kind, default, help). Kinds:
#   "str"    str or None
#   "count"  int >= 1, or None/-1 meaning "no limit" / "disabled" (stored as None)
#   "nonneg" int >= 0
#   "int"    any int or None
#   "bool"   True or False
_RUNCONFIG_FIELDS = {
    "model_dir": ("str", None, "checkpoints, ckpt_info and exports go here"),
    "run_steps": ("count", None, "steps to run in this invocation (None: until max_steps or data end)"),
    "max_steps": ("count", None, "global step at which training stops (None: no limit)"),
    "save_steps": ("count", 1000, "save a checkpoint every N steps (None: disabled)"),
    "eval_steps": ("count", 1000, "evaluate every N steps (None: disabled)"),
    "eval_max_steps": ("count", None, "evaluate on at most N batches (None: the whole eval set)"),
    "skip_steps": ("nonneg", 0, "steps to skip before hooks start logging"),
    "log_steps": ("count", 10, "log every N steps (None: disabled)"),
    "max_ckpt": ("count", 5, "checkpoints to keep (None: keep all)"),
    "seed": ("int", None, "random seed for paddle, numpy and random (None: not seeded)"),
    "log_dir": ("str", None, "VisualDL log directory (None: the trainer's default under model_dir)"),
    # off by default since the CPU fixes of bench/RESULTS.md issue 13 (seventh session): dygraph
    # trains as fast or faster at every shape measured and pays no compile
    "to_static": ("bool", False, "train with the model's forward compiled by paddle.jit.to_static; "
                                 "false (the default; or env PROPELLER_TO_STATIC=0): plain dygraph"),
}


class RunConfig:
    """How a run is driven: where it writes, how long it runs, how often it logs/saves/evaluates.

    Strict on purpose: a typo in a run_config (``"max_step"``) would otherwise be silently
    ignored and the run would train forever. Unknown keys and wrong types raise ValueError
    naming the key (and the source file when built with ``from_dict(..., source=...)``).
    ``-1`` is accepted for the count fields as the original Propeller's "unlimited" and is
    stored as None, so code reading a RunConfig only ever sees None or a positive int.
    Integral floats (``1e4`` in JSON) are accepted for int fields.
    """

    __slots__ = tuple(_RUNCONFIG_FIELDS)
    _fields = tuple(_RUNCONFIG_FIELDS)

    def __init__(self, **kwargs):
        self._init(kwargs, source=None)

    def _init(self, values, source, origins=None):
        for name, (_, default, _) in _RUNCONFIG_FIELDS.items():
            object.__setattr__(self, name, default)
        for key, value in values.items():
            where = (origins or {}).get(key, source)
            object.__setattr__(self, key, _check_runconfig_value(key, value, where))

    @classmethod
    def from_dict(cls, d, source=None, origins=None):
        """Build from a mapping; ``source`` (a file name or argument) is named in errors, or the
        key's own entry of ``origins`` (key -> source, when the dict merges several files)."""
        if not isinstance(d, dict):
            raise ValueError("%srun_config must be a JSON object, got %s" % (_where(source), type(d).__name__))
        self = cls.__new__(cls)
        self._init(d, source, origins)
        return self

    @classmethod
    def from_json(cls, text, source=None):
        return cls.from_dict(json.loads(text), source=source)

    def __setattr__(self, key, value):
        object.__setattr__(self, key, _check_runconfig_value(key, value, None))

    def replace(self, **kwargs):
        """A copy with some fields changed (validated like the constructor)."""
        d = self.to_dict()
        d.update(kwargs)
        return RunConfig(**d)

    _replace = replace  # the original RunConfig was a namedtuple

    def to_dict(self):
        return {k: getattr(self, k) for k in self._fields}

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    def __eq__(self, other):
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "RunConfig(%s)" % ", ".join("%s=%r" % kv for kv in self.to_dict().items())

    def __getstate__(self):
        return self.to_dict()

    def __setstate__(self, state):
        self._init(state, None)


def _where(source):
    return "%s: " % source if source else ""


def _check_runconfig_value(key, value, source):
    if key not in _RUNCONFIG_FIELDS:
        raise ValueError(
            "%sunknown RunConfig key %r (known keys: %s)" % (_where(source), key, ", ".join(_RUNCONFIG_FIELDS))
        )
    kind = _RUNCONFIG_FIELDS[key][0]

    def bad(expect):
        return ValueError(
            "%sRunConfig key %r expects %s, got %s %r" % (_where(source), key, expect, type(value).__name__, value)
        )

    if kind == "str":
        if value is not None and not isinstance(value, str):
            raise bad("a string or null")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if value is None:
        if kind == "nonneg":
            raise bad("an int >= 0")
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad({"count": "a positive int, -1 or null", "nonneg": "an int >= 0", "int": "an int or null"}[kind])
    if kind == "count":
        if value == -1:
            return None
        if value < 1:
            raise bad("a positive int, -1 or null")
    elif kind == "nonneg" and value < 0:
        raise bad("an int >= 0")
    return value


def check_hparams(hparams, known, source=None):
    """Raise ValueError for the first key of ``hparams`` (a dict or HParams) that is not in
    ``known``, naming it and the closest known key: a typo (``learnig_rate``) would otherwise be
    silently ignored and the run would train with the default. Keys under ``"user"`` (a dict)
    are the user's own and never checked; a model declares the keys it reads in ``HPARAMS``."""
    known = set(known) | {USER_NAMESPACE}
    for key in hparams:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = " (did you mean %r?)" % close[0] if close else ""
        raise ValueError(
            "%sunknown hparam %r%s. Keys of your own go under \"%s\": {...} (or in the model's "
            "HPARAMS); known keys: %s" % (_where(source), key, hint, USER_NAMESPACE, ", ".join(sorted(known))))
    user = hparams[USER_NAMESPACE] if USER_NAMESPACE in hparams else None
    if user is not None and not isinstance(user, dict):
        raise ValueError("%shparam %r must be a dict of your own keys, got %s"
                         % (_where(source), USER_NAMESPACE, type(user).__name__))


class HParams:
    """Hyper-parameters: a flat dict with attribute access.

    Strictness lives where the readers are known: the trainer checks the hparams against the
    keys the model, the optimiser and the trainer read (:func:`check_hparams`), so an unknown
    key is an error; your own keys go under ``"user": {...}``.

    ``hp.learning_rate`` and ``hp['learning_rate']`` both work; a missing name raises
    AttributeError/KeyError naming it (so ``hasattr`` and ``getattr(hp, k, default)`` work).
    Keys that shadow a method (``get``, ``join``, ...) are only reachable with ``hp['get']``.
    """

    def __init__(self, **kwargs):
        object.__setattr__(self, "_values", dict(kwargs))

    # --- access
    def __getattr__(self, key):
        # Only called when normal lookup fails. Guard _values so unpickling/copying (which
        # probe attributes before __init__ ran) does not recurse.
        if key.startswith("__") or key == "_values":
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError("HParams has no key %r" % key) from None

    def __setattr__(self, key, value):
        self._values[key] = value

    def __delattr__(self, key):
        try:
            del self._values[key]
        except KeyError:
            raise AttributeError("HParams has no key %r" % key) from None

    def __getitem__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise KeyError("HParams has no key %r" % key) from None

    def __setitem__(self, key, value):
        self._values[key] = value

    def __contains__(self, key):
        return key in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def keys(self):
        return self._values.keys()

    def items(self):
        return self._values.items()

    def get(self, key, default=None):
        return self._values.get(key, default)

    def check(self, known, source=None):
        """:func:`check_hparams` on these values; returns self."""
        check_hparams(self._values, known, source)
        return self

    # --- combination / conversion
    def join(self, other):
        """A new HParams with ``other``'s values over ours (later wins). ``other`` may be a dict."""
        merged = dict(self._values)
        merged.update(other.to_dict() if isinstance(other, HParams) else dict(other))
        return HParams(**merged)

    def to_dict(self):
        return copy.deepcopy(self._values)

    def to_json(self, **kwargs):
        return json.dumps(self._values, **kwargs)

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise ValueError("HParams.from_dict expects a dict, got %s" % type(d).__name__)
        return cls(**d)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def __eq__(self, other):
        return isinstance(other, HParams) and self._values == other._values

    def __repr__(self):
        return "HParams(%s)" % ", ".join("%s=%r" % kv for kv in self._values.items())

    def __getstate__(self):
        return self._values

    def __setstate__(self, state):
        object.__setattr__(self, "_values", dict(state))


@dataclass
class InferenceSpec:
    """The tensors an exported inference model takes and returns (in this order)."""

    inputs: List[Any] = field(default_factory=list)
    outputs: List[Any] = field(default_factory=list)


@dataclass
class ModelSpec:
    """What a model function returns for one mode; unused fields stay None."""

    loss: Any = None
    predictions: Any = None
    metrics: Optional[Dict[str, Any]] = None
    mode: Optional[RunMode] = None
    inference_spec: Optional[InferenceSpec] = None


@dataclass
class WarmStartSetting:
    """Initialise from ``from_dir``, loading only the parameters for which ``predicate_fn(name)`` is true."""

    predicate_fn: Callable[[str], bool]
    from_dir: str
