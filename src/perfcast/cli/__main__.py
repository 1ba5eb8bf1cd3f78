"""``python -m perfcast.cli``."""

from perfcast.cli.main import main

main()
