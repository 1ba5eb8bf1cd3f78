"""Work-arounds for third-party packages as they are installed, each in its own module."""
