"""``python -m jobs``: the ``verifier`` command line."""
from jobs.cli import main

main()
