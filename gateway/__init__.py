"""Edge adapters that turn what vendor equipment speaks into the device contract."""
