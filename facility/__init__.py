"""The facility service: command line, settings and the device contract shared by every component."""
