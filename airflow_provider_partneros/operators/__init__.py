"""PartnerOS operators."""
