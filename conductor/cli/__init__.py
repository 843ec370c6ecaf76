"""The `conductor` command line."""
