"""One module per command: configure(subparsers) registers flags, run(args) does the work."""
