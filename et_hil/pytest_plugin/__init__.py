"""The pytest plugin: options, fixtures and hooks mapped onto the library."""
