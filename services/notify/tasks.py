"""Celery tasks of this service (thin: ids in, unit of work, service layer)."""
