"""The command line: one module per command group; only this package imports typer and rich."""
