"""Alembic migrations, shipped inside the wheel and found with importlib.resources."""
