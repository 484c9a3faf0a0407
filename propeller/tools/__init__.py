"""Command-line tools, run as ``python -m propeller.tools.<name>`` (e.g. ``start_server``)."""
