"""`python -m sveta` runs the command line."""

from sveta.cli import main

main()
