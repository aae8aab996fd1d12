"""The session subsystem: one PartnerOS session shared per identity, by a host or a deployment.

``flows``            the lifecycle decisions for any store (no I/O): reuse, rotate, replace, linger
``lifecycle``        one holder's session (a hook, or a triggerer's shared session), for both transports
``store``            the backend interface and the lease built on it
``records``          what a store keeps (cookies, sessions, the last failure)
``file_store``       the host's store (files and ``flock``)
``redis_store``      the deployment's store (Redis), extra ``[redis]``
``config``           the ``[partneros]`` options, and opening the stores
``sync_transport``   the hook's driver (``requests``); ``sync_http``: one exchange, one sign-out
``async_transport``  the triggers' driver (``httpx``); store calls run in worker threads
``steward``          the detached process that signs out a lingering session
"""
