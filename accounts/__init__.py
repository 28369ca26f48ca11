"""Staff accounts: users with roles and sites, their passwords, and the lock on guessing them."""
