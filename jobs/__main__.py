"""``python -m jobs``: the ``verifier`` command line."""
from jobs.cli import program

program()
