"""The properties of each name, one module per family of objectives (``SPECS`` in each).

Imported by `minialign.check.check` only, after hypothesis is known to be installed.
"""
