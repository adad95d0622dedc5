"""
One adapter module per server the app hooks into, named after it.

Each adapter is the only place that touches that server's internals. Its
docstring lists every internal it relies on and the upstream issue or code
behind it; its ``problems()`` checks them at startup (system checks
notifications.W201 and W202); and when an assumption is broken, or the
drain fails at stop time, it falls back to the server's own behaviour with
one ERROR line, so a stop never hangs.

- daphne.py: the ``daphne`` command and Daphne's ``runserver`` server.
- runserver.py: Django's autoreloader around ``runserver``.
"""


def code_mentions(function: object, name: str) -> bool:
    """
    Return whether the code of ``function`` mentions ``name`` (an attribute,
    a global or a constant). An instance attribute, a dict key or a thread
    name cannot be looked up from outside: this finds whether the code that
    sets it still does.
    """
    code = getattr(function, "__code__", None)
    return code is not None and (name in code.co_names or name in code.co_consts)
