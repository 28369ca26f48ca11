"""The web console: staff work tickets, devices, patrols and occupants reports in a browser."""
