"""Sub-commands of the ``miam-explain`` command line, one module each.

Each module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed namespace) as the parser default.
"""
