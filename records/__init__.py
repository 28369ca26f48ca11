"""Records: devices, alarms, tickets and their audit trail (SQLAlchemy 2; SQLite or PostgreSQL)."""
