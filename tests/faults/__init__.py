"""Worker entry points with an injected fault, for tests that need one (never shipped)."""
