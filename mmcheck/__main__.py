"""`python -m mmcheck` (e.g. `pypy3 -m mmcheck run ...` from a venv without the script)."""

from .cli import main

main()
