"""mmer trainer service."""
