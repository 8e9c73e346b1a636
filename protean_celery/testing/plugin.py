"""pytest plugin (``pytest11`` entry point). Opens no connection at import."""
