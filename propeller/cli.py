"""Command-line entry points: a user error is one clear message and exit status 2, not a traceback.

    from propeller.cli import run_main
    if __name__ == "__main__":
        sys.exit(run_main(main))            # main(argv=None) -> exit status or None

What counts as a user error (the message already says what and where; a traceback would bury
it): a bad config or hparam (``ValueError``: JSON syntax, unknown key), a missing or unreadable
file (``OSError``), a bad or corrupt checkpoint (``ValueError``/``EOFError``/unpickling errors),
bad data (``BadLineError``, undecodable bytes), and ``SystemExit`` with a message (the form
older code uses). Anything else is a bug and keeps its traceback (exit status 1).
``--debug`` on the command line, or ``PROPELLER_DEBUG=1`` in the environment, prints the
traceback of user errors too.

Imports nothing heavy (no paddle): every command can use it.
"""
import os
import pickle
import sys
import traceback

__all__ = ["UserError", "USER_ERRORS", "DEBUG_ENV", "EXIT_USER_ERROR", "add_debug_argument", "debug_enabled",
           "run_main"]

DEBUG_ENV = "PROPELLER_DEBUG"
EXIT_USER_ERROR = 2  # as argparse exits on a bad flag


class UserError(Exception):
    """A problem with what the user gave (config, data, files), its message saying what and where."""


USER_ERRORS = (UserError, ValueError, OSError, EOFError, pickle.UnpicklingError)


def add_debug_argument(parser):
    """Add ``--debug`` (show tracebacks of user errors) to an argparse parser; returns it."""
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error (also: {DEBUG_ENV}=1)")
    return parser


def debug_enabled(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0") or "--debug" in argv


def _prog():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "propeller"


def _message(e):
    text = str(e).strip()
    if isinstance(e, OSError) and e.filename and e.strerror:  # "[Errno 2] ..." -> "path: No such file"
        text = f"{e.filename}: {e.strerror}"
    return text or type(e).__name__


def _without_debug(args):
    """``args`` less ``--debug`` (up to a ``--``, after which the arguments are another command's)."""
    args = list(args)
    end = args.index("--") if "--" in args else len(args)
    return [a for a in args[:end] if a != "--debug"] + args[end:]


def run_main(main, argv=None, prog=None):
    """Call ``main(argv)`` (``main()`` when argv is None) and return its exit status; user errors
    print ``prog: error: message`` to stderr and return 2 (see the module doc). ``--debug`` is
    taken out of the arguments first, so every command accepts it wherever it stands."""
    prog = prog or _prog()
    debug = debug_enabled(argv)
    if argv is None:
        sys.argv[1:] = _without_debug(sys.argv[1:])
    else:
        argv = _without_debug(argv)
    try:
        rc = main() if argv is None else main(argv)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            raise  # argparse, sys.exit(n): already what the user should see
        if debug:
            traceback.print_exc()
        msg = str(e.code)
        print(msg if msg.startswith(("error:", f"{prog}: ")) else f"{prog}: error: {msg}",
              file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
    except USER_ERRORS as e:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {_message(e)}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    return rc if isinstance(rc, int) else 0
