"""Apache Airflow provider for PartnerOS.

Import what you need from the submodules (``hooks``, ``operators``, ``sensors``, ``triggers``);
this package itself stays import-light so DAG files parse fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
