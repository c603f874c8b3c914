"""`python -m gateway ...`"""

from gateway.cli import cli

cli()
