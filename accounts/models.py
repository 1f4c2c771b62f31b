"""Accounts use Django's own User model; this app adds JWT and socket authentication around it."""
