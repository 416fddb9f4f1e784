"""Source adapters: each turns one origin (package, data file, maintainer file) into a SourceBatch."""
