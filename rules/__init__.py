"""Rules engine: classifies readings into routine, major and emergency faults."""
