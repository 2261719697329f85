"""Runnable examples of limiter in use."""
