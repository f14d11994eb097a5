"""Categories: a flat set of slugs that products belong to."""
