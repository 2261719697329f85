"""One router per IM service (``POST /v4/<service>/<command>``), included by
:func:`examples.im_backend.app.create_app` under ``/v4`` with the ``sdkappid`` dependency."""
