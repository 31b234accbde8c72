"""One workspace per job the user does (this release: the library)."""
