"""Crash-safe file and directory writes.

A reader (a resuming trainer, a server picking up an export) must never see a half-written
checkpoint: everything is written under a hidden temporary name beside the target (same
filesystem, so the final rename is atomic), fsynced, then renamed into place. After a crash
only hidden ``.<name>.tmp-*`` / ``.<name>.old-*`` entries can be left behind; the target is
either the old version or the new one (or, in the instant between the two renames of a
directory replacement, absent with the old version kept under ``.<name>.old-*``).

This module must not import paddle: Propeller's trainer and non-Paddle tools use it.
"""
import contextlib
import errno
import os
import re
import shutil
import uuid

__all__ = ["atomic_dir", "atomic_file", "atomic_write_bytes", "atomic_write_text", "remove_stale_tmp"]

_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-[0-9a-f]{12}$")


def _sibling(final_path, tag):
    """A hidden, unused name beside ``final_path``: ``.<name>.<tag>-<random>``."""
    parent, name = os.path.split(final_path)
    return os.path.join(parent, f".{name}.{tag}-{uuid.uuid4().hex[:12]}")


def _fsync_path(path):
    is_dir = os.path.isdir(path)
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if is_dir else 0))
    except PermissionError:
        if is_dir:
            return  # Windows cannot open a directory handle; nothing more to sync there
        raise
    try:
        os.fsync(fd)
    except OSError as e:
        # Some filesystems refuse fsync on a directory handle; the files themselves were synced.
        if not (is_dir and e.errno in (errno.EINVAL, errno.EBADF, errno.EACCES)):
            raise
    finally:
        os.close(fd)


def _fsync_tree(root):
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                _fsync_path(path)
        _fsync_path(dirpath)


def _parent_of(path):
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return parent


@contextlib.contextmanager
def atomic_dir(final_path):
    """Build a directory under a temporary name and move it to ``final_path`` on success.

    Yields the temporary directory (beside ``final_path``). When the body finishes, the tree
    is fsynced and renamed to ``final_path``; an existing directory there is renamed aside,
    replaced, then deleted. When the body raises, the temporary directory is removed and
    ``final_path`` is left untouched.
    """
    final_path = os.path.abspath(final_path)
    parent = _parent_of(final_path)
    if os.path.lexists(final_path) and not os.path.isdir(final_path):
        raise FileExistsError(f"{final_path} exists and is not a directory; refusing to replace it")
    while True:
        tmp = _sibling(final_path, "tmp")
        try:
            os.mkdir(tmp)  # plain mkdir (not mkdtemp) so the final dir gets the usual umask permissions
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        _fsync_tree(tmp)
        old = _swap_in(tmp, final_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_path(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _swap_in(tmp, final_path):
    """Rename ``tmp`` to ``final_path``. Returns the path the previous version was moved to, or None."""
    try:
        os.rename(tmp, final_path)  # no previous version (or an empty dir, which POSIX rename replaces)
        return None
    except OSError as e:
        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    old = _sibling(final_path, "old")
    os.rename(final_path, old)
    try:
        os.rename(tmp, final_path)
    except BaseException:
        os.rename(old, final_path)  # put the previous version back
        raise
    return old


@contextlib.contextmanager
def atomic_file(final_path):
    """Yield a temporary file path beside ``final_path``; on success fsync it and ``os.replace`` it
    into place. For writers that want a path (``paddle.save``, ``np.save``) rather than bytes."""
    final_path = os.path.abspath(final_path)
    parent = _parent_of(final_path)
    if os.path.isdir(final_path):
        raise IsADirectoryError(f"{final_path} is a directory")
    tmp = _sibling(final_path, "tmp")
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise FileNotFoundError(f"nothing was written to the temporary file for {final_path}")
        _fsync_path(tmp)
        os.replace(tmp, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_path(parent)


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` so that readers see the old content or the new, never a part."""
    with atomic_file(path) as tmp:
        # O_EXCL: never write through a name someone else created in the meantime.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def atomic_write_text(path, text, encoding="utf-8"):
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode(encoding))


def remove_stale_tmp(parent, name_pattern=None):
    """Remove the ``.<name>.tmp-*`` entries a killed writer left in ``parent`` (only those whose
    ``<name>`` fully matches ``name_pattern``, a regex, when given). Call it only when no
    writer can be running (a trainer at start). ``.old-*`` entries are kept: one may be the only
    copy of its target. Returns the removed paths."""
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for entry in names:
        m = _TMP_NAME.match(entry)
        if m is None or (name_pattern is not None and not re.fullmatch(name_pattern, m.group("name"))):
            continue
        path = os.path.join(parent, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                continue
        removed.append(path)
    return removed
