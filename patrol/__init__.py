"""Electronic patrol (電子巡更): checkpoints, routes, plans and rounds, scans checked against the plan."""
