"""Tickets: the lifecycle the manual prescribes, alarms turned into tickets, escalation and notification."""
