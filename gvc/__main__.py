"""`python -m gvc` runs the command line."""

from gvc.cli import main

main()
