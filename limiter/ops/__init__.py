"""The operations, free of I/O: each one checks its input, then is a generator that yields the
round trips it needs (store requests) and returns its result. The engines drive them."""
