"""The `knowlearn` subcommands' implementations, one module per group (knowlearn.cli parses)."""
