"""The domain core: models, entitlement rules and services. No Flask here."""
