"""Hyper-parameter search around any training command: grid or random, one run per trial in its own
model_dir, resumable, results sorted by a dev metric.

    python -m propeller.tools.search --spec search.json --work_dir output/search --metric dev.acc -- \\
        example/finetune_classifier.py --data_dir data/demo/sentiment --vocab_file data/demo/vocab.txt \\
            --warm_start_from output/demo/ernie2 --run_config '{"max_steps": 300}' \\
            --result_file {result_file}

The spec (JSON, ``#`` comments and ``"base"`` files allowed, as for --hparam)::

    {"method": "grid",                       # or "random" (then "budget": trials, "seed": 0)
     "hparam": {"learning_rate": [5e-5, 1e-4, 3e-4],
                "adversarial": [null, {"method": "fgm", "epsilon": 1.0}],
                "adversarial.epsilon": [0.5, 1.0]},   # dotted keys reach into a dict
     "run_config": {"seed": [1, 2, 3]}}

A list is a set of choices (grid: every combination; random: drawn uniformly). Random search
also takes ranges: ``{"uniform": [lo, hi]}``, ``{"loguniform": [lo, hi]}``, ``{"randint": [lo, hi]}``
(inclusive). Each trial runs the command once with its values: the run config as one JSON
``--run_config`` (the command's own, ``base`` files resolved, with the trial's keys and
``model_dir`` = ``WORK/<trial>/model`` over it) and the hparams as one more ``--hparam`` (later
wins). The placeholders ``{trial}``, ``{trial_dir}``, ``{model_dir}``, ``{result_file}`` are
filled in anywhere in the command (other braces are left alone).

A trial reports its metrics as a JSON object in ``{result_file}`` (the fine-tuning examples'
``--result_file`` writes ``dev.<metric>`` and ``test.<metric>`` of the best-on-dev model), or
as the last JSON line it prints. A trial's directory is named by a digest of its values, so a
rerun (or a larger spec) skips every trial that finished (``--rerun`` runs them again).
``WORK/search_results.tsv`` lists the trials sorted by ``--metric`` (best first; ``--mode min``
for a loss), one column per searched key and per reported metric; ``WORK/search_results.png``
plots the metric against each searched key. ``--nproc N`` runs each trial under
``python -m paddle.distributed.launch --nproc_per_node N`` (the command must start with a .py
file), one trial at a time.
"""
import argparse
import hashlib
import itertools
import json
import math
import os
import random
import shlex
import sys

from propeller.fsutil import atomic_write_text
from propeller.tools.command import (fill_placeholders, last_json_line, python_command, read_result, run_echoing,
                                     with_hparam, with_run_config)
from propeller.util import load_dict

__all__ = ["trials", "main"]

SECTIONS = ("hparam", "run_config")
RANGES = ("uniform", "loguniform", "randint")
SPEC_KEYS = {"method", "budget", "seed"} | set(SECTIONS)


def _dims(spec, source):
    """[(section, dotted key, choices list or (range kind, lo, hi))] of a spec, checked."""
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValueError(f"{source}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(SPEC_KEYS))})")
    dims = []
    for section in SECTIONS:
        space = spec.get(section) or {}
        if not isinstance(space, dict):
            raise ValueError(f"{source}: {section!r} must map keys to lists or ranges")
        for key, value in space.items():
            where = f"{source}: {section}.{key}"
            if isinstance(value, list):
                if not value:
                    raise ValueError(f"{where}: an empty list of choices")
                dims.append((section, key, value))
            elif isinstance(value, dict) and len(value) == 1 and next(iter(value)) in RANGES:
                kind, bounds = next(iter(value.items()))
                if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float))
                                                                              for b in bounds)
                        and bounds[0] <= bounds[1] and (kind != "loguniform" or bounds[0] > 0)):
                    raise ValueError(f"{where}: {kind} takes [low, high] with low <= high (> 0 for loguniform)")
                dims.append((section, key, (kind, *bounds)))
            else:
                raise ValueError(f"{where}: expected a list of choices or one of "
                                 f"{{{', '.join(RANGES)}: [low, high]}}, got {value!r}")
    if not dims:
        raise ValueError(f"{source}: nothing to search (give lists or ranges under 'hparam' / 'run_config')")
    return dims


def _draw(dim, rng):
    if isinstance(dim, list):
        return dim[rng.randrange(len(dim))]
    kind, lo, hi = dim
    if kind == "uniform":
        return rng.uniform(lo, hi)
    if kind == "loguniform":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.randint(int(lo), int(hi))


def trials(spec, source="spec"):
    """The trials of a spec: a list of {"hparam": {dotted key: value}, "run_config": {...}}."""
    dims = _dims(spec, source)
    method = spec.get("method", "grid")
    if method == "grid":
        ranged = [f"{s}.{k}" for s, k, d in dims if not isinstance(d, list)]
        if ranged:
            raise ValueError(f"{source}: grid search needs lists of choices; ranges ({', '.join(ranged)}) "
                             "are for \"method\": \"random\"")
        combos = itertools.product(*[d for _, _, d in dims])
    elif method == "random":
        budget = spec.get("budget")
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"{source}: random search needs \"budget\": the number of trials (an int >= 1)")
        rng = random.Random(spec.get("seed", 0))
        combos = [[_draw(d, rng) for _, _, d in dims] for _ in range(budget)]
    else:
        raise ValueError(f"{source}: method must be \"grid\" or \"random\", got {method!r}")
    out = []
    for values in combos:
        trial = {s: {} for s in SECTIONS}
        for (section, key, _), v in zip(dims, values):
            trial[section][key] = v
        out.append(trial)
    return out


def _nested(flat):
    """{"a.b": 1} -> {"a": {"b": 1}}: dotted keys reach into dicts (merged over the command's)."""
    out = {}
    for key, value in flat.items():
        node, parts = out, key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"search key {key!r} reaches into {part!r}, which another key sets to a value")
        node[parts[-1]] = value
    return out


def _trial_name(trial):
    return "trial_" + hashlib.sha1(json.dumps(trial, sort_keys=True).encode()).hexdigest()[:10]


def _command(template, trial, dirs, nproc):
    cmd = fill_placeholders(template, dirs)
    cmd = with_run_config(cmd, dict(_nested(trial["run_config"]), model_dir=dirs["model_dir"]))
    cmd = with_hparam(cmd, _nested(trial["hparam"]))
    if nproc > 1:
        if not cmd[0].endswith(".py"):
            raise SystemExit("search: --nproc needs a command that starts with a .py file (paddle.distributed.launch "
                             "runs a script)")
        return [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
                "--log_dir", os.path.join(dirs["trial_dir"], "launch_logs")] + cmd
    return python_command(cmd)


def _run_trial(i, n, trial, template, work, nproc, rerun):
    name = _trial_name(trial)
    trial_dir = os.path.join(work, name)
    dirs = {"trial": name, "trial_dir": trial_dir, "model_dir": os.path.join(trial_dir, "model"),
            "result_file": os.path.join(trial_dir, "result.json")}
    shown = ", ".join(f"{k}={json.dumps(v)}" for s in SECTIONS for k, v in trial[s].items())
    if os.path.exists(dirs["result_file"]) and not rerun:
        print(f"[search] {i + 1}/{n} {name} ({shown}): done before, skipped", file=sys.stderr)
        return dict(read_result(dirs["result_file"]), trial=name)
    os.makedirs(trial_dir, exist_ok=True)
    atomic_write_text(os.path.join(trial_dir, "trial.json"), json.dumps(trial, indent=1) + "\n")
    cmd = _command(template, trial, dirs, nproc)
    print(f"[search] {i + 1}/{n} {name} ({shown}): {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr)
    if os.path.exists(dirs["result_file"]):  # --rerun: the old result must not pass for the new one
        os.remove(dirs["result_file"])
    code, tail = run_echoing(cmd, dict(os.environ, SEARCH_TRIAL=name, SEARCH_MODEL_DIR=dirs["model_dir"],
                                       SEARCH_RESULT_FILE=dirs["result_file"]), f"[{name}] ")
    if code != 0:
        raise SystemExit(f"search: trial {name} ({shown}) failed with exit status {code}; its directory: {trial_dir}")
    if not os.path.exists(dirs["result_file"]):
        found = last_json_line(tail)
        if found is None:
            raise SystemExit(f"search: trial {name} wrote no {dirs['result_file']} and printed no JSON result")
        atomic_write_text(dirs["result_file"], json.dumps(found) + "\n")
    return dict(read_result(dirs["result_file"]), trial=name)


def _table(results, trial_list, metric, mode):
    keys = [f"{s}.{k}" for s in SECTIONS for k in trial_list[0][s]] if trial_list else []
    metrics = sorted({k for r in results for k in r if k != "trial"})
    rows = []
    for trial, res in zip(trial_list, results):
        row = {f"{s}.{k}": v for s in SECTIONS for k, v in trial[s].items()}
        row.update(res)
        rows.append(row)
    missing = [r["trial"] for r in rows if not isinstance(r.get(metric), (int, float))]
    if missing:
        raise SystemExit(f"search: metric {metric!r} is missing from the results of {', '.join(missing)} "
                         f"(they report: {', '.join(metrics)})")
    rows.sort(key=lambda r: r[metric], reverse=(mode == "max"))
    return ["trial"] + keys + [m for m in metrics if m != metric and m not in keys], rows


def _write_tsv(path, columns, metric, rows):
    def cell(v):
        return json.dumps(v) if isinstance(v, (dict, list)) or v is None else str(v)
    lines = ["\t".join([metric] + columns)]
    lines += ["\t".join(cell(r.get(c)) for c in [metric] + columns) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _plot(path, rows, keys, metric):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        xs = [r.get(key) for r in rows]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        labels = sorted({json.dumps(x) for x in xs}) if not numeric else None
        pos = xs if numeric else [labels.index(json.dumps(x)) for x in xs]
        ax.scatter(pos, [r[metric] for r in rows])
        if numeric and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        if labels:
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels([l if len(l) < 24 else l[:21] + "..." for l in labels], rotation=20, fontsize=7)
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        raise SystemExit("search: put the training command after `--` (see python -m propeller.tools.search -h)")
    cut = argv.index("--")
    ours, template = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(prog="python -m propeller.tools.search",
                                 usage="%(prog)s --spec FILE --work_dir DIR --metric NAME [options] -- COMMAND ARGS...",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True, help="the search spec: a JSON file or literal")
    ap.add_argument("--work_dir", required=True)
    ap.add_argument("--metric", required=True, help="the reported metric to sort by, e.g. dev.acc")
    ap.add_argument("--mode", choices=("max", "min"), default="max")
    ap.add_argument("--nproc", type=int, default=1, help="processes per trial (paddle.distributed.launch)")
    ap.add_argument("--rerun", action="store_true", help="run finished trials again")
    args = ap.parse_args(ours)
    if not template:
        ap.error("no command after --")
    try:
        spec, source = load_dict(args.spec, "--spec")
        trial_list = trials(spec, source)
    except ValueError as e:
        raise SystemExit(f"search: {e}")
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    results = [_run_trial(i, len(trial_list), t, template, work, args.nproc, args.rerun)
               for i, t in enumerate(trial_list)]
    columns, rows = _table(results, trial_list, args.metric, args.mode)
    tsv = os.path.join(work, "search_results.tsv")
    _write_tsv(tsv, columns, args.metric, rows)
    keys = [f"{s}.{k}" for s in SECTIONS for k in trial_list[0][s]]
    _plot(os.path.join(work, "search_results.png"), rows, keys, args.metric)
    best = rows[0]
    print(f"[search] {len(rows)} trials; best {args.metric} = {best[args.metric]} with "
          + ", ".join(f"{k}={json.dumps(best[k])}" for k in keys) + f" ({best['trial']}); table: {tsv}")
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
