"""Search spaces: space files and the walker that samples and encodes architectures."""
