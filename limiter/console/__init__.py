"""The parts of the ``limiter`` console command (the command itself is :mod:`limiter.cli`)."""
