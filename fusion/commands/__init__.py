"""The `fusion` subcommands, one module each with `add_arguments(parser)` and `run(args)`.
Command modules are leaves: nothing imports them (`fusion.cli` finds them by name)."""
