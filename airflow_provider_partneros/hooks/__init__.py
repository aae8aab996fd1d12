"""PartnerOS hooks."""
