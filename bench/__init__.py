"""Benchmarks of the bot's own cost, run by hand or by `make bench`, never as timed tests."""
