"""PartnerOS sensors."""
