"""The `facility` command: its command line, the one-process service's wiring, the demo and its broker."""
