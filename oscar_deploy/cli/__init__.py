"""The `oscar-deploy` command line: the app, options shared by commands, one module per command group."""
