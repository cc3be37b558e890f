"""Package data: see README."""
