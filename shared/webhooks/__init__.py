"""Signed webhooks: the Standard Webhooks signature, the retry schedule, the payload and one HTTP attempt."""
