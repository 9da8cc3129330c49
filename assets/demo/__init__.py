"""The shipped demo soundscape (SYNTHETIC) and the script that makes it."""
