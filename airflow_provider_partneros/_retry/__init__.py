"""Task-level retries after PartnerOS errors (public face: :mod:`airflow_provider_partneros.retry_policies`).

* :mod:`.delay`: the rule "wait as long as the server asked", on any Airflow;
* :mod:`.policy`: the ``RetryPolicy`` subclass, importable only on Airflow 3.3+.

This ``__init__`` imports nothing, so :mod:`.delay` imports on every Airflow.
"""
