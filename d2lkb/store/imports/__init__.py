"""Moving in: schedules and review history from other tools (OSR vaults, Anki packages)."""
