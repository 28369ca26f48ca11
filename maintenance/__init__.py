"""Preventive maintenance (manual §4.1): plans, contractors, work orders, and windows that hold alarms."""
