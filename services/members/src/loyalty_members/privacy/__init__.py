"""Personal data handling: phone numbers normalized, encrypted at rest, found by a keyed blind index, shown masked."""
