"""The session subsystem: one PartnerOS session shared per identity, by a host or a deployment.

``records``     what a store keeps (cookies, sessions, the last failure), no I/O
``store``       the backend interface and the lease built on it
``file_store``  the host's store (files and ``flock``)
``redis_store`` the deployment's store (Redis), extra ``[redis]``
``config``      the ``[partneros]`` options
"""
