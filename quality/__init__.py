"""Service quality figures (manual §9.1): tickets, repeat faults, alarms, patrols, maintenance, occupants."""
