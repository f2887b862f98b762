"""chanscale host driver. Not implemented yet: see issue 5."""
