"""What the tools that wrap a user's training command (k-fold, search, LR finder) share: running
it under this Python, steering its ``--run_config`` / ``--hparam``, echoing its output, reading
the JSON result it reports."""
import json
import re
import subprocess
import sys

from propeller.util import _deep_merge, load_dict

__all__ = ["python_command", "fill_placeholders", "with_run_config", "with_hparam", "run_echoing",
           "last_json_line", "read_result"]


def python_command(cmd):
    """``cmd`` with this Python in front when it starts with a ``.py`` file or ``-m``."""
    cmd = list(cmd)
    if cmd and (cmd[0].endswith(".py") or cmd[0] == "-m"):
        cmd = [sys.executable] + cmd
    return cmd


def fill_placeholders(cmd, values):
    """Replace ``{name}`` for the names in ``values`` in every argument; other braces (a JSON
    ``--run_config`` literal) are left alone."""
    pattern = re.compile(r"\{(%s)\}" % "|".join(map(re.escape, values)))
    return [pattern.sub(lambda m: str(values[m.group(1)]), arg) for arg in cmd]


def _flag_value(cmd, flag):
    """(index of the value, value) of the last ``flag VALUE`` or ``flag=VALUE`` in cmd, or (None, None)."""
    found = (None, None)
    for i, arg in enumerate(cmd):
        if arg == flag and i + 1 < len(cmd):
            found = (i + 1, cmd[i + 1])
        elif arg.startswith(flag + "="):
            found = (i, arg[len(flag) + 1:])
    return found


def with_run_config(cmd, overrides):
    """``cmd`` whose ``--run_config`` (a file or literal, its ``base`` files resolved) is replaced by
    one JSON literal with ``overrides`` merged over it; added when the command has none."""
    i, value = _flag_value(cmd, "--run_config")
    merged, origins = {}, {}
    if value is not None:
        merged, _ = load_dict(value, "--run_config")
    _deep_merge(merged, overrides, origins, lambda _: None)
    literal = json.dumps(merged)
    cmd = list(cmd)
    if i is None:
        return cmd + ["--run_config", literal]
    cmd[i] = literal if cmd[i] == value else "--run_config=" + literal
    return cmd


def with_hparam(cmd, hparams):
    """``cmd`` with one more ``--hparam`` (later ones win) holding ``hparams``, if any."""
    return list(cmd) + (["--hparam", json.dumps(hparams)] if hparams else [])


def run_echoing(cmd, env, prefix, tail_lines=50):
    """Run ``cmd``, echoing its stdout line by line behind ``prefix`` (a run may take hours);
    returns (exit status, its last ``tail_lines`` lines)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, bufsize=1)
    tail = []
    for line in proc.stdout:
        sys.stdout.write(f"{prefix}{line}")
        tail = (tail + [line])[-tail_lines:]
    return proc.wait(), tail


def last_json_line(lines):
    """The last line that is a JSON object, parsed, or None."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def read_result(path):
    """The JSON object of metrics in ``path``; an error naming the file otherwise."""
    with open(path, encoding="utf-8") as f:
        try:
            result = json.load(f)
        except ValueError as e:
            raise SystemExit(f"{path}: not JSON ({e})")
    if not isinstance(result, dict):
        raise SystemExit(f"{path} must hold a JSON object of metrics")
    return result
