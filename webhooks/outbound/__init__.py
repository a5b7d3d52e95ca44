"""Outbound events: signed (Standard Webhooks) POSTs of campaign and send state changes to the
endpoints partners register, retried from the database for more than a day."""
