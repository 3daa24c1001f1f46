"""The dashboard: static pages and ES modules, shipped inside the wheel and served by the API."""
