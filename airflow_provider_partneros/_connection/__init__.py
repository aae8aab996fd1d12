"""The Airflow connection of type ``partneros``: its defaults and how it becomes settings.

* :mod:`.defaults`: the defaults, in a module with no imports (``get_provider_info`` shows them in
  the connection form while Airflow initialises itself, so it must not import Airflow);
* :mod:`.settings`: :class:`~.settings.PartnerOSSettings` and the parser shared by the hook, the
  trigger session and the connection form.

This ``__init__`` imports nothing, so importing :mod:`.defaults` stays free.
"""
