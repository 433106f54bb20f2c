"""Helpers shared by the tests and bench/ (not tests themselves): import them as
`helpers.<module>`; pytest puts tests/ on sys.path."""
