"""Command-line plumbing: ``--run_config`` / ``--hparam`` and their environment fallbacks.

    parser = propeller.ArgumentParser('classifier')
    parser.add_argument('--data_dir', ...)
    args = parser.parse_args()
    run_config = propeller.parse_runconfig(args)   # RunConfig, strict
    hparams = propeller.parse_hparam(args)         # HParams, later --hparam wins

Each value is a path to a file or a dict literal (JSON, or a Python literal dict read with
ast.literal_eval -- never eval). ``#`` starts a comment to the end of the line, outside
quoted strings, in files and literals alike.
"""
import argparse
import ast
import json
import os

from propeller.cli import add_debug_argument
from propeller.types import HParams, RunConfig

__all__ = ["ArgumentParser", "parse_runconfig", "parse_hparam", "load_dict", "strip_comments"]

ENV_RUNCONFIG = "PROPELLER_RUNCONFIG"
ENV_HPARAMS = "PROPELLER_HPARAMS"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with Propeller's ``--run_config`` and repeatable ``--hparam`` already added."""

    def __init__(self, name=None, **kwargs):
        kwargs.setdefault("description", name)
        super().__init__(**kwargs)
        self.add_argument(
            "--run_config",
            type=str,
            default=None,
            help="RunConfig as a JSON string or a JSON file (env fallback: %s)" % ENV_RUNCONFIG,
        )
        self.add_argument(
            "--hparam",
            type=str,
            action="append",
            default=None,
            help="hyper-parameters: a file or a dict literal; repeatable, later ones override "
            "earlier ones (env fallback: %s)" % ENV_HPARAMS,
        )
        add_debug_argument(self)


def strip_comments(text):
    """Blank out ``#`` comments that are outside quoted strings.

    Comment characters become spaces (newlines kept) so JSON error positions still point at
    the right line and column of the original text.
    """
    out = list(text)
    quote = None  # the quote char of the string we are in, if any
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 2  # skip the escaped char, whatever it is
                continue
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
            continue
        i += 1
    return "".join(out)


def _parse_dict_text(text, what):
    """Parse comment-stripped ``text`` as a JSON object or a Python dict literal."""
    cleaned = strip_comments(text)
    try:
        value = json.loads(cleaned)
    except json.JSONDecodeError as json_err:
        try:
            value = ast.literal_eval(cleaned.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as py_err:
            # The JSON message carries line/column, the more useful of the two.
            raise ValueError(
                "%s is neither valid JSON (%s: line %d column %d, char %d) nor a Python dict "
                "literal (%s)"
                % (what, json_err.msg, json_err.lineno, json_err.colno, json_err.pos, _short(py_err))
            ) from None
    if not isinstance(value, dict):
        raise ValueError("%s must be a dict / JSON object, got %s" % (what, type(value).__name__))
    bad_keys = [k for k in value if not isinstance(k, str)]
    if bad_keys:
        raise ValueError("%s: keys must be strings, got %r" % (what, bad_keys[0]))
    return value


def _short(err):
    if isinstance(err, SyntaxError):
        return "%s at line %s" % (err.msg, err.lineno)
    if "malformed node" in str(err):  # ast's message shows an object repr; say what it means
        return "only literal values are allowed, not names or calls"
    return str(err) or type(err).__name__


def load_dict(value, what):
    """Read ``value`` (a file path or a dict literal) into a dict.

    Returns ``(dict, source)`` where source names the argument and, for files, the file, so
    later validation errors can say where the bad key came from.
    """
    stripped = value.strip()
    if os.path.isfile(value):
        source = "%s file %r" % (what, value)
        try:
            with open(value, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError("%s: cannot read: %s" % (source, e)) from None
        return _parse_dict_text(text, source), source
    if not stripped.startswith("{"):
        # Not a literal, so the user meant a file: say that it is missing rather than
        # reporting a confusing JSON error at char 0.
        raise ValueError("%s %r: no such file, and not a dict literal (which starts with '{')" % (what, value))
    shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
    return _parse_dict_text(value, "%s %r" % (what, shown)), what


def _get(args, attr):
    if args is None:
        return None
    if isinstance(args, dict):
        return args.get(attr)
    return getattr(args, attr, None)


def parse_runconfig(args=None):
    """A RunConfig from ``args.run_config``, else $PROPELLER_RUNCONFIG, else all defaults.

    ``args`` may be an argparse Namespace, a dict with a ``run_config`` key, None, or the
    run_config value itself (a JSON string / file path).
    """
    if isinstance(args, str):
        value, what = args, "run_config"
    else:
        value, what = _get(args, "run_config"), "--run_config"
    if value is None:
        value, what = os.environ.get(ENV_RUNCONFIG), "$" + ENV_RUNCONFIG
    if value is None or not value.strip():
        return RunConfig()
    d, source = load_dict(value, what)
    return RunConfig.from_dict(d, source=source)


def parse_hparam(args=None):
    """HParams from the ``--hparam`` values in order (later wins), else $PROPELLER_HPARAMS.

    ``args`` may be an argparse Namespace, a dict with an ``hparam`` key, None, or a list of
    values. The environment variable holds one value (file path or dict literal).
    """
    if isinstance(args, (list, tuple)):
        values = list(args)
    else:
        values = _get(args, "hparam")
        if isinstance(values, str):
            values = [values]
    what = "--hparam"
    if not values:
        env = os.environ.get(ENV_HPARAMS)
        values = [env] if env and env.strip() else []
        what = "$" + ENV_HPARAMS
    merged = {}
    for i, value in enumerate(values):
        d, _ = load_dict(value, what if len(values) == 1 else "%s #%d" % (what, i + 1))
        merged.update(d)
    return HParams(**merged)
