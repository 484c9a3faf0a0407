"""Predict functions for the server's crash-containment tests: numpy only, so a worker that
imports this module starts in a fraction of a second."""
import ctypes
import os

import numpy as np


class CrashFactory:
    """``predict([x])`` returns ``[x * 2]``; a request whose first value is 666 aborts the
    worker process (``os.abort``, SIGABRT), 667 segfaults it (a read of address 0), 668 raises
    SystemExit (which must not end the worker either)."""

    num_threads = 1

    def __call__(self):
        return self.predict

    @staticmethod
    def predict(arrays):
        first = int(np.asarray(arrays[0]).reshape(-1)[0])
        if first == 666:
            os.abort()
        if first == 667:
            ctypes.string_at(0)
        if first == 668:
            raise SystemExit("user code called exit")
        return [np.asarray(arrays[0]) * 2]
