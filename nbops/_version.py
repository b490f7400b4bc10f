"""The package version, importable without the package's front end (``nbops/__init__.py``
registers the IPython extension)."""

__version__ = "0.1.0"
