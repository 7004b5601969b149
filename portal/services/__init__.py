"""The service layer: every page, the Open311 API and the CLI call these functions."""
