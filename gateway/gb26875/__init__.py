"""GB/T 26875.3-2011: the transmission devices (用戶信息傳輸裝置) of fire alarm systems, over TCP."""
