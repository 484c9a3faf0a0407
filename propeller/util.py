"""Command-line plumbing: ``--run_config`` / ``--hparam`` and their environment fallbacks.

    parser = propeller.ArgumentParser('classifier')
    parser.add_argument('--data_dir', ...)
    args = parser.parse_args()
    run_config = propeller.parse_runconfig(args)   # RunConfig, strict
    hparams = propeller.parse_hparam(args)         # HParams, later --hparam wins

Each value is a path to a file or a dict literal (JSON, or a Python literal dict read with
ast.literal_eval -- never eval). ``#`` starts a comment to the end of the line, outside
quoted strings, in files and literals alike. A file or literal may name ``"base": "other.json"``
(or a list): those are read first and its own keys override theirs (:func:`load_dict`);
``--print_config`` prints the merged result with each key's origin and exits.
"""
import argparse
import ast
import copy
import json
import os

from propeller.cli import add_debug_argument
from propeller.types import HParams, RunConfig

__all__ = ["ArgumentParser", "parse_runconfig", "parse_hparam", "load_dict", "strip_comments", "format_config"]

ENV_RUNCONFIG = "PROPELLER_RUNCONFIG"
ENV_HPARAMS = "PROPELLER_HPARAMS"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with Propeller's ``--run_config`` and repeatable ``--hparam`` already added."""

    def __init__(self, name=None, print_config=None, **kwargs):
        # print_config: namespace -> the text --print_config shows (commands whose settings come
        # from elsewhere too, as pre-training's --schedule, pass their own)
        self._config_text = print_config or _print_run_config
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
        self.add_argument(
            "--print_config",
            action="store_true",
            help="print the merged run_config and hparams (after \"base\" files and repeated --hparam), "
            "each key with the file it came from, and exit",
        )
        add_debug_argument(self)

    def parse_known_args(self, args=None, namespace=None):
        ns, rest = super().parse_known_args(args, namespace)
        if getattr(ns, "print_config", False):
            print(self._config_text(ns))
            self.exit(0)
        return ns, rest


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


BASE_KEY = "base"


def _deep_merge(into, update, origins, origin_of, prefix=""):
    """Merge ``update`` into ``into`` in place: nested dicts key by key, anything else replaced
    (a later list replaces an earlier one, a dict replaces a scalar). ``origins`` maps every
    leaf key, by dotted path, to ``origin_of(path)``."""
    for key, value in update.items():
        path = prefix + key
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value, origins, origin_of, path + ".")
            continue
        for stale in [k for k in origins if k == path or k.startswith(path + ".")]:
            del origins[stale]
        into[key] = copy.deepcopy(value)
        for leaf in _leaf_paths({key: value}, prefix):
            origins[leaf] = origin_of(leaf)


def _leaf_paths(d, prefix=""):
    for key, value in d.items():
        if isinstance(value, dict) and value:
            yield from _leaf_paths(value, prefix + key + ".")
        else:
            yield prefix + key


def _read_one(value, what):
    """(dict, source, directory that relative ``base`` paths start from) of one file or literal."""
    stripped = value.strip()
    if os.path.isfile(value):
        source = "%s file %r" % (what, value)
        try:
            with open(value, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError("%s: cannot read: %s" % (source, e)) from None
        return _parse_dict_text(text, source), source, os.path.dirname(os.path.abspath(value))
    if not stripped.startswith("{"):
        # Not a literal, so the user meant a file: say that it is missing rather than
        # reporting a confusing JSON error at char 0.
        raise ValueError("%s %r: no such file, and not a dict literal (which starts with '{')" % (what, value))
    shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
    return _parse_dict_text(value, "%s %r" % (what, shown)), what, os.getcwd()


def _load_with_bases(value, what, chain):
    """(merged dict, source, origins) of ``value`` and, first, its ``base`` files (depth-first,
    in list order, later wins). ``chain``: the files being read, outermost first, for the cycle
    check and the error messages."""
    d, source, here = _read_one(value, what)
    bases = d.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ValueError("%s: %r must be a file name or a list of file names, got %r" % (source, BASE_KEY, bases))
    chain = chain + [value]
    seen = {os.path.realpath(c) for c in chain if os.path.isfile(c)}
    merged, origins = {}, {}
    for base in bases:
        path = os.path.join(here, base)  # an absolute base stays absolute
        if not os.path.relpath(path).startswith(".."):
            path = os.path.relpath(path)  # messages and --print_config show it as the user would write it
        trail = " -> ".join(chain + [base])
        if not os.path.isfile(path):
            raise ValueError("%s: base file %r not found (looked for %s; chain: %s)" % (source, base, path, trail))
        if os.path.realpath(path) in seen:
            raise ValueError("%s: base files form a cycle: %s" % (source, trail))
        sub, _, sub_origins = _load_with_bases(path, "base", chain)
        _deep_merge(merged, sub, origins, sub_origins.get)
    _deep_merge(merged, d, origins, lambda _: source)
    return merged, source, origins


def load_dict(value, what, with_origins=False):
    """Read ``value`` (a file path or a dict literal) into a dict.

    ``"base": "other.json"`` (or a list of them), in a file or a literal, reads those first
    (paths relative to the file naming them; to the current directory for a literal), each with
    its own bases, depth-first and in list order; then this dict's keys override them. Nested
    dicts merge key by key (later wins); a cycle or a missing base is an error naming the chain.

    Returns ``(dict, source)`` where source names the argument and, for files, the file, so
    later validation errors can say where the bad key came from; with ``with_origins``,
    ``(dict, source, origins)``, origins naming the file or argument each leaf key (as a dotted
    path) came from.
    """
    merged, source, origins = _load_with_bases(value, what, [])
    return (merged, source, origins) if with_origins else (merged, source)


def _get(args, attr):
    if args is None:
        return None
    if isinstance(args, dict):
        return args.get(attr)
    return getattr(args, attr, None)


def _runconfig_value(args):
    """(value, what) of the run config: the argument, else the environment variable."""
    if isinstance(args, str):
        value, what = args, "run_config"
    else:
        value, what = _get(args, "run_config"), "--run_config"
    if value is None:
        value, what = os.environ.get(ENV_RUNCONFIG), "$" + ENV_RUNCONFIG
    return (value, what) if value is not None and value.strip() else (None, what)


def parse_runconfig(args=None, with_origins=False):
    """A RunConfig from ``args.run_config``, else $PROPELLER_RUNCONFIG, else all defaults.

    ``args`` may be an argparse Namespace, a dict with a ``run_config`` key, None, or the
    run_config value itself (a JSON string / file path). With ``with_origins``, also where each
    key came from (see :func:`load_dict`).
    """
    value, what = _runconfig_value(args)
    if value is None:
        return (RunConfig(), {}) if with_origins else RunConfig()
    d, source, origins = load_dict(value, what, with_origins=True)
    rc = RunConfig.from_dict(d, source=source, origins=origins)
    return (rc, origins) if with_origins else rc


def parse_hparam(args=None, with_origins=False):
    """HParams from the ``--hparam`` values in order (later wins, nested dicts merged key by key),
    else $PROPELLER_HPARAMS.

    ``args`` may be an argparse Namespace, a dict with an ``hparam`` key, None, or a list of
    values. The environment variable holds one value (file path or dict literal). With
    ``with_origins``, also where each key came from (see :func:`load_dict`).
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
    merged, origins = {}, {}
    for i, value in enumerate(values):
        d, _, d_origins = load_dict(value, what if len(values) == 1 else "%s #%d" % (what, i + 1), with_origins=True)
        _deep_merge(merged, d, origins, d_origins.get)
    hp = HParams(**merged)
    return (hp, origins) if with_origins else hp


def format_config(sections):
    """``--print_config``'s text: for each ``(title, dict, origins, missing)``, one leaf key a line
    (nested keys dotted) with where it came from (``missing`` where origins has no entry)."""
    lines = []
    for title, d, origins, missing in sections:
        lines.append("# " + title)
        flat = {}
        _flatten(d, "", flat)
        for key, value in flat.items():
            shown = json.dumps(value, ensure_ascii=False)
            lines.append("%s = %s    # %s" % (key, shown, origins.get(key, missing)))
    return "\n".join(lines)


def _print_run_config(ns):
    rc, rc_origins = parse_runconfig(ns, with_origins=True)
    hp, hp_origins = parse_hparam(ns, with_origins=True)
    return format_config([("run_config (merged)", rc.to_dict(), rc_origins, "default"),
                          ("hparams (merged; keys not listed take the model's and trainer's defaults)",
                           hp.to_dict(), hp_origins, "?")])


def _flatten(d, prefix, out):
    for key, value in d.items():
        if isinstance(value, dict) and value:
            _flatten(value, prefix + key + ".", out)
        else:
            out[prefix + key] = value
