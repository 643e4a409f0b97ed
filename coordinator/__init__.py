"""mmer coordinator service."""
