"""PartnerOS triggers."""
