"""zoo's built-in model plugins (import package ``zoo_plugins``).

Each module registers its models through the same ``register_models`` hook that third-party
plugins use.
"""
