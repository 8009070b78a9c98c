"""Search spaces shared by methods."""
