"""The continual schedule and the multi-task batch stream (no training)."""
import json
import logging
import os

import numpy as np
import pytest

from ernie.pretraining.multitask import build_tasks
from ernie.pretraining.pipeline import CursorLog, MultiTaskStream, TaskStream, block_shuffled, collate
from ernie.pretraining.schedule import Schedule
from test_pretrain_tasks import ZH_DOCS, ctx_for, encode_docs, make_tokenizer

STAGES = [{"budgets": {"km": 5}}, {"budgets": {"km": 3, "sr": 4}}, {"budgets": {"km": 2, "sr": 2, "sd": 6}}]


def test_paper_example_budgets_per_stage():
    stages = [{"budgets": {"km": 20}}, {"budgets": {"km": 10, "cp": 30}}, {"budgets": {"km": 10, "cp": 10, "tdr": 40}},
              {"budgets": {"km": 10, "cp": 10, "tdr": 10, "sr": 50}}]
    s = Schedule(stages, ["km", "cp", "tdr", "sr"], batch_size=4, seed=3)
    assert s.total == 200 and list(s.starts) == [0, 20, 60, 120, 200]
    for k, st in enumerate(stages):
        got = [s.task_names[s.tasks_at(p)[0]] for p in range(s.starts[k], s.starts[k + 1])]
        assert {t: got.count(t) for t in set(got)} == st["budgets"]
        assert all(len(set(s.tasks_at(p))) == 1 for p in range(s.starts[k], s.starts[k + 1]))
    # a function of (seed, position): a fresh object agrees, another seed does not
    again = Schedule(stages, ["km", "cp", "tdr", "sr"], batch_size=4, seed=3)
    assert all((again.tasks_at(p) == s.tasks_at(p)).all() for p in range(200))
    other = Schedule(stages, ["km", "cp", "tdr", "sr"], batch_size=4, seed=4)
    assert any((other.tasks_at(p) != s.tasks_at(p)).any() for p in range(200))
    assert [s.stage_of(p) for p in (0, 19, 20, 59, 60, 199)] == [0, 0, 1, 1, 2, 3]
    with pytest.raises(IndexError):
        s.stage_of(200)


def test_mixed_batches_hold_each_task_in_proportion():
    s = Schedule(STAGES, ["km", "sr", "sd"], batch_size=8, mix="mixed", seed=0)
    rows = [s.tasks_at(p) for p in range(s.starts[2], s.starts[3])]
    assert all(len(r) == 8 for r in rows)
    assert np.bincount(np.concatenate(rows), minlength=3).tolist() == [2 * 8, 2 * 8, 6 * 8]
    assert sum(len(set(r)) > 1 for r in rows) > len(rows) // 2  # batches really mix tasks


def test_counts_before_matches_enumeration():
    for mix in ("task_per_batch", "mixed"):
        s = Schedule(STAGES, ["km", "sr", "sd"], batch_size=4, mix=mix, seed=1)
        for workers in (1, 2, 3):
            for w in range(workers):
                for pos in (0, 4, 7, 12, s.total):
                    expect = np.zeros(3, "int64")
                    for p in range(w, pos, workers):
                        expect += np.bincount(s.tasks_at(p), minlength=3)
                    assert s.counts_before(pos, w, workers).tolist() == expect.tolist()


def test_schedule_rejects_unknown_task():
    with pytest.raises(ValueError, match="not configured"):
        Schedule([{"budgets": {"xx": 3}}], ["km"], 4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tok = make_tokenizer(tmp_path_factory.mktemp("v"))
    docs = ZH_DOCS * 4  # 12 documents
    corpus = encode_docs(tok, docs)
    return tok, corpus


def test_stream_is_a_function_of_position(setup):
    tok, corpus = setup
    spec = {"km": {}, "sr": {}, "sd": {}}
    sched = Schedule(STAGES, list(spec), batch_size=3, seed=5)
    stream = MultiTaskStream(build_tasks(spec), sched, corpus, ctx_for(tok, corpus), seed=5)
    full = list(stream)
    assert len(full) == sched.total
    for b, pos in zip(full, range(sched.total)):  # each batch is the task the schedule says
        task_ids = {0: 0, 1: 3, 2: 4}[int(sched.tasks_at(pos)[0])]
        assert (b[3] == task_ids).all() and int(b[4][0]) == sched.stage_of(pos)
    resumed = list(stream.skip(9))  # starting mid-stage gives exactly the rest
    assert len(resumed) == sched.total - 9
    for a, b in zip(full[9:], resumed):
        for x, y in zip(a, b):
            if isinstance(x, tuple):
                assert all((u == v).all() for u, v in zip(x, y))
            else:
                assert (x == y).all()


def test_ranks_read_disjoint_documents(setup):
    tok, corpus = setup
    sd = build_tasks({"nsp": {}})[0]
    seen = []
    for rank in (0, 1):
        s = TaskStream(sd, corpus, ctx_for(tok, corpus), seed=0, rank=rank, world=2)
        assert set(s.share) == set(range(rank, len(corpus), 2))
        seen.append(set(s.share))
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(len(corpus)))


def test_collate_lays_out_mixed_tasks(setup):
    tok, corpus = setup
    tasks = build_tasks({"km": {}, "cp": {}, "sd": {}})
    ctx = ctx_for(tok, corpus)
    rng = np.random.RandomState(0)
    exs = [tasks[2].build(corpus[0], rng, ctx, label=0), tasks[0].build(corpus[1], rng, ctx),
           tasks[2].build(corpus[0], rng, ctx, label=2)]
    index = {t.name: (k, t) for k, t in enumerate(tasks)}
    src, sent, pos, task_ids, stage, present, indices, labels = collate(exs, index, ctx, stage=1)
    S = src.shape[1]
    assert present.tolist() == [0, 2] and stage.tolist() == [1]
    assert task_ids[:, 0].tolist() == [4, 0, 4]
    assert indices[1].tolist() == [0, 2] and labels[1].tolist() == [0, 2]  # sentence task: batch rows
    assert (indices[0] // S == 1).all()  # the km targets are flat positions in row 1
    assert (src.reshape(-1)[indices[0]] == exs[1].token_ids[exs[1].positions]).all()


def test_dataloader_workers_keep_the_schedule_order(setup):
    tok, corpus = setup
    spec = {"km": {}, "sr": {}, "sd": {}}
    sched = Schedule(STAGES, list(spec), batch_size=3, seed=5)
    stream = MultiTaskStream(build_tasks(spec), sched, corpus, ctx_for(tok, corpus), seed=5)
    task_id = {0: 0, 1: 3, 2: 4}
    runs = {}
    for start in (0, 5):
        got = [b for b in stream.skip(start).to_paddle_dataloader(num_workers=2)]
        assert len(got) == sched.total - start
        for pos, b in zip(range(start, sched.total), got):
            assert (b[3].numpy() == task_id[int(sched.tasks_at(pos)[0])]).all()
            assert int(b[4].numpy()[0]) == sched.stage_of(pos)
            assert isinstance(b[6], (tuple, list)) and len(b[6]) == len(b[7]) == 1
        runs[start] = got
    for a, b in zip(runs[0][5:], runs[5]):  # resuming with the same workers gives the same batches
        assert (a[0].numpy() == b[0].numpy()).all() and (a[7][0].numpy() == b[7][0].numpy()).all()


def _pair_file(tok, path):
    """12 labelled IR pairs whose queries all differ."""
    chars = [t for t in tok.vocab if len(t) == 1 and "\u4e00" <= t <= "\u9fff"][:12]
    assert len(chars) == 12
    path.write_text("".join(f"北京 {c}\t天气\t{k % 3}\n" for k, c in enumerate(chars)), encoding="utf-8")
    return str(path)


def test_labelled_pair_files_split_across_ranks(setup, tmp_path):
    tok, corpus = setup
    ir = build_tasks({"ir": {"pair_files": _pair_file(tok, tmp_path / "pairs.tsv")}})[0]
    got = []
    for rank in (0, 1):
        s = TaskStream(ir, corpus, ctx_for(tok, corpus), seed=0, rank=rank, world=2)
        got.append([tuple(next(s).token_ids.tolist()) for _ in range(6)])  # one epoch of this rank's half
    assert len(set(got[0]) | set(got[1])) == 12  # disjoint halves, together the whole file


# ----------------------------------------------------------------------------- resuming from the cursor log

def _same(a, b):
    """Two batches (numpy or paddle) are equal in every field."""
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    a, b = (np.asarray(x.numpy() if hasattr(x, "numpy") else x) for x in (a, b))
    return a.shape == b.shape and (a == b).all()


def _read(stream, num_workers):
    return [b for b in (stream.to_paddle_dataloader(num_workers=num_workers) if num_workers else stream)]


def test_block_shuffled_starts_anywhere():
    full = list(block_shuffled(range(50), np.random.RandomState(3), block=8))
    assert sorted(full) == list(range(50))
    for start in (0, 7, 8, 30, 49, 50):
        assert list(block_shuffled(range(50), np.random.RandomState(3), block=8, start=start)) == full[start:]


def test_task_stream_seeks_to_its_cursor(setup, tmp_path):
    tok, corpus = setup
    ctx = ctx_for(tok, corpus)
    for spec in ({"sd": {}}, {"ir": {"pair_files": _pair_file(tok, tmp_path / "pairs.tsv")}}):
        task = build_tasks(spec)[0]
        a = TaskStream(task, corpus, ctx, seed=1, world=2, rank=1)
        first = [next(a) for _ in range(9)]  # past the end of an epoch (6 documents or rows)
        at, rest = a.cursor(), [next(a) for _ in range(9)]
        b = TaskStream(task, corpus, ctx, seed=1, world=2, rank=1)
        b.seek(*at)
        assert at[0] >= 1 and _same([tuple(e[1:]) for e in rest], [tuple(next(b)[1:]) for _ in range(9)])
        assert not _same([tuple(e[1:]) for e in first], [tuple(e[1:]) for e in rest])


RESUME_STAGES = [{"budgets": {"km": 5}}, {"budgets": {"km": 3, "sr": 4, "ir": 3}},
                 {"budgets": {"km": 2, "sr": 2, "sd": 6, "ir": 2}}]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_from_the_cursor_log_equals_the_uninterrupted_stream(setup, tmp_path, caplog, num_workers):
    tok, corpus = setup
    spec = {"km": {}, "sr": {}, "sd": {}, "ir": {"pair_files": _pair_file(tok, tmp_path / "pairs.tsv")}}
    sched = Schedule(RESUME_STAGES, list(spec), batch_size=3, seed=5)
    ctx = ctx_for(tok, corpus)
    plain = MultiTaskStream(build_tasks(spec), sched, corpus, ctx, seed=5)
    logged = MultiTaskStream(build_tasks(spec), sched, corpus, ctx, seed=5, cursor_dir=str(tmp_path / "cur"),
                             cursor_every=2)
    full = _read(plain, num_workers)
    assert len(full) == sched.total == 27
    assert _same(full, _read(logged, num_workers))  # writing the log changes nothing
    k = max(1, num_workers)  # one log per producer
    assert sorted(os.listdir(tmp_path / "cur")) == sorted(f"cursors-{logged.fingerprint(w, k)}-{w}of{k}.jsonl"
                                                          for w in range(k))
    caplog.set_level(logging.INFO, logger="ernie")
    for start in (4, 13, 20):
        got = _read(logged.skip(start), num_workers)
        assert len(got) == sched.total - start and _same(full[start:], got), start
    if not num_workers:  # in-process: the log says where it restored from
        assert "task cursors of position 20 restored from the cursor log, 0 batches replayed" in caplog.text
        assert "task cursors of position 12 restored from the cursor log, 1 batches replayed" in caplog.text
    else:  # the DataLoader workers do read their logs: wrong cursors there change the batches
        path = tmp_path / "cur" / f"cursors-{logged.fingerprint(1, 2)}-1of2.jsonl"
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({"pos": e["pos"], "cursors": [[ep, off + 1] for ep, off in e["cursors"]]})
                                + "\n" for e in entries))
        assert not _same(full[20:], _read(logged.skip(20), num_workers))


def test_resume_from_the_cursor_log_builds_little(setup, tmp_path, monkeypatch):
    tok, corpus = setup
    spec = {"sr": {}, "tdr": {}}  # tasks that give an example from every document here: builds = examples
    sched = Schedule([{"budgets": {"sr": 30}}, {"budgets": {"sr": 20, "tdr": 30}}], list(spec), batch_size=3, seed=1)
    ctx = ctx_for(tok, corpus)
    tasks = build_tasks(spec)
    stream = MultiTaskStream(tasks, sched, corpus, ctx, seed=1, cursor_dir=str(tmp_path), cursor_every=4)
    calls = []
    for t in tasks:
        build = type(t).build
        monkeypatch.setattr(type(t), "build", lambda self, *a, _b=build: calls.append(1) or _b(self, *a))
    full = list(stream)
    assert len(calls) == sched.total * 3
    start, consumed = 75, 2
    builds = {}
    for cursor_dir in (None, str(tmp_path)):
        calls.clear()
        it = MultiTaskStream(tasks, sched, corpus, ctx, seed=1, cursor_dir=cursor_dir, cursor_every=4).skip(start)
        got = [b for _, b in zip(range(consumed), it)]
        assert _same(full[start:start + consumed], got)
        builds[cursor_dir] = len(calls)
    assert builds[None] == (start + consumed) * 3  # replay: every example before start
    assert builds[str(tmp_path)] <= (4 + consumed) * 3  # at most cursor_every batches replayed
    assert builds[str(tmp_path)] == (start - 72 + consumed) * 3  # from the entry of position 72


def test_cursor_log_ignores_cut_lines_and_other_fingerprints(setup, tmp_path):
    tok, corpus = setup
    spec = {"km": {}, "sr": {}, "sd": {}}
    sched = Schedule(STAGES, list(spec), batch_size=3, seed=5)
    ctx = ctx_for(tok, corpus)

    def make(**kw):
        kw = {"seed": 5, "cursor_dir": str(tmp_path), "cursor_every": 2, **kw}
        return MultiTaskStream(build_tasks(spec), sched, corpus, ctx, **kw)

    stream = make()
    full = list(make(cursor_dir=None))
    # everything the content depends on is in the fingerprint
    fp = stream.fingerprint()
    others = [make(seed=6), make(rank=1, world=2), make(world=2),
              MultiTaskStream(build_tasks({"km": {}, "sr": {"max_segments": 2}, "sd": {}}), sched, corpus, ctx, seed=5),
              MultiTaskStream(build_tasks(spec), Schedule(STAGES, list(spec), 4, seed=5), corpus, ctx, seed=5),
              MultiTaskStream(build_tasks(spec), sched, corpus, ctx_for(tok, corpus, max_seqlen=32), seed=5)]
    assert fp not in {o.fingerprint() for o in others} | {stream.fingerprint(1, 2), stream.fingerprint(0, 2)}
    assert fp == make(cursor_every=7).fingerprint() == stream.skip(3).fingerprint()
    # another fingerprint's log, with cursors that would be wrong here: never read
    bad = CursorLog(str(tmp_path), others[0].fingerprint(), 0, 1, 3)
    for pos in range(2, sched.total, 2):
        bad.write(pos, [(3, 1), (2, 0), (5, 4)])
    bad.close()
    assert _same(full[15:], list(stream.skip(15)))  # no entry of ours yet: replayed
    assert sorted(CursorLog(str(tmp_path), fp, 0, 1, 3).entries) == [16, 18, 20]
    assert _same(full, list(stream))
    ours = CursorLog(str(tmp_path), fp, 0, 1, 3)
    assert sorted(ours.entries) == list(range(2, sched.total, 2)) and ours.path != bad.path
    # a line cut by a crash is passed over: the entry before it is used
    cut_dir = str(tmp_path / "cut")
    assert _same(full, list(make(cursor_dir=cut_dir)))
    path = CursorLog(cut_dir, fp, 0, 1, 3).path
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    assert json.loads(lines[-1])["pos"] == 20
    with open(path, "wb") as f:
        f.writelines(lines[:-1] + [lines[-1][:len(lines[-1]) // 2]])
    assert sorted(CursorLog(cut_dir, fp, 0, 1, 3).entries)[-1] == 18
    assert _same(full[21:], list(make(cursor_dir=cut_dir).skip(21)))
    assert sorted(CursorLog(cut_dir, fp, 0, 1, 3).entries)[-1] == 18
    # the next writer starts a fresh line, so the entry is logged again
    assert _same(full[19:], list(make(cursor_dir=cut_dir).skip(19)))
    assert sorted(CursorLog(cut_dir, fp, 0, 1, 3).entries) == list(range(2, sched.total, 2))
    # bytes that are not UTF-8 cost that line only
    with open(path, "ab") as f:
        f.write(b"\xff\xfe{\n")
    assert sorted(CursorLog(cut_dir, fp, 0, 1, 3).entries) == list(range(2, sched.total, 2))
    # a log that cannot be written (here: its directory is a file) never stops the stream
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    assert _same(full, list(make(cursor_dir=str(blocked))))


def test_old_file_examples_protocol_is_refused(setup):
    tok, corpus = setup
    task = build_tasks({"sd": {}})[0]
    task.file_examples = lambda ctx, rng: iter(())
    with pytest.raises(TypeError, match="file_rows"):
        next(TaskStream(task, corpus, ctx_for(tok, corpus)))
