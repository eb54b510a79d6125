"""Development tools, never part of a production run: the local Graph API emulator, the dump
generator, the benchmark and the demo."""
