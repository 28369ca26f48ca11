"""Device simulators: every device type of the contract, with realistic signals, publishing over MQTT."""
