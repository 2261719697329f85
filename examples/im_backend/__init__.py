"""A small IM backend in the hosted service's REST shapes, guarded by limiter.

``examples.im_backend.app:app`` (or ``create_app()``) is the FastAPI app; ``python -m
examples.im_backend.reconcile`` rebuilds the limiter's counters from its SQLite database;
``python -m examples.im_backend.demo`` serves it on localhost for the README's tour.
"""
