"""Products: pricing, inventory and the stock ledger."""
