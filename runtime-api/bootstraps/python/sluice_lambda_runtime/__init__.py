"""sluice's Python Lambda runtime (see bootstrap.py here and ../README.md)."""
