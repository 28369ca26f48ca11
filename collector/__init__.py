"""The collector: MQTT in, durable buffer, time-series store out."""
