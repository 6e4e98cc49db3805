"""``python -m hubsight`` runs the CLI."""

from hubsight.cli.main import main

main()
