"""Domain services: the operations handlers and channels may perform, each bound to one
database session (one unit of work)."""
