"""Scheduled digests: parsing `/qwq digest` schedules and the times they fire."""
