"""The tier ladder (regular, silver, gold, diamond): definitions and progress."""
