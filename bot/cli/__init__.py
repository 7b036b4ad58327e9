"""Operator commands behind `python -m bot <command>`: check, health, backup."""
