"""``python -m rxtweet`` runs the command-line interface."""

from .cli import main

# Guarded: importing this module (doctest collection does) must not run the CLI.
if __name__ == "__main__":
    raise SystemExit(main())
